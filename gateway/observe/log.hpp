// Logging: one line per event on stderr. logfmt by default ("ts=... level=... event=... key=value
// ..."; values with spaces, quotes, '=' or escapes quoted), or one JSON object per line. Either way
// every value is valid UTF-8 with the same escapes, which logfmt and JSON readers both decode:
// \" \\ \n \r \t and \uXXXX for other controls, DEL, C1 controls and the Unicode format
// characters that reorder or break a line on screen; a byte that is not UTF-8 becomes \ufffd. So no
// input can forge a line, a field or a terminal escape. Thread-safe; each line is written with
// one write(2). Under journald (JOURNAL_STREAM names stderr) each line starts with its syslog
// priority, "<6>" info, "<4>" warn, "<3>" error, which journald takes off and records.
#pragma once

#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>

namespace hkpgw::gateway::log {

enum class Level { info, warn, error };
enum class Format { logfmt, json };

// The line format and the least level written (server.log_format, server.log_level); lines
// below it are dropped before they are formatted. Safe to call while other threads log.
void configure(Format format, Level least);

// Whether stderr is the journal's stream (systemd sets JOURNAL_STREAM to its "device:inode");
// from then on, lines carry their priority prefix. Call once, early in main().
void detect_journal();

using Field = std::pair<std::string_view, std::string_view>;

void write(Level level, std::string_view event, std::initializer_list<Field> fields);

inline void info(std::string_view event, std::initializer_list<Field> fields = {}) {
  write(Level::info, event, fields);
}
inline void warn(std::string_view event, std::initializer_list<Field> fields = {}) {
  write(Level::warn, event, fields);
}
inline void error(std::string_view event, std::initializer_list<Field> fields = {}) {
  write(Level::error, event, fields);
}

// For the access log: lines are collected per thread and written together (one write(2) of at
// most 4 KiB, PIPE_BUF, so they still never interleave with other lines). A line waits at most
// 100 ms if more lines follow; a thread that goes quiet must call flush_batched() now and then
// (the app does, every 100 ms on each network thread), and a thread that ends writes its rest.
void write_batched(Level level, std::string_view event, std::initializer_list<Field> fields);
void flush_batched();  // this thread's collected lines, now

// Libraries that print to the C `stderr` stream (RNP prints some validation failures there,
// unconditionally) would break the one-event-per-line format. This points `stderr` at a stream
// that turns each of their lines into a `level=warn event=library_message text="..."` line.
// File descriptor 2 is untouched: our own lines, crash messages and sanitizer reports still go
// straight to it. Call once, early in main().
void capture_library_stderr();

}  // namespace hkpgw::gateway::log
