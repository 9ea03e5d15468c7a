#include "gateway/observe/log.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <ctime>

#include "hkp/text.hpp"

namespace hkpgw::gateway::log {
namespace {

const char* level_name(Level l) {
  switch (l) {
    case Level::info: return "info";
    case Level::warn: return "warn";
    case Level::error: return "error";
  }
  return "?";
}

// syslog priorities (sd-daemon(3)): journald takes the prefix off and records the priority.
std::string_view journal_prefix(Level l) {
  switch (l) {
    case Level::info: return "<6>";
    case Level::warn: return "<4>";
    case Level::error: return "<3>";
  }
  return "<6>";
}

std::atomic<Format> g_format{Format::logfmt};
std::atomic<Level> g_least{Level::info};
std::atomic<bool> g_journal{false};

bool wanted(Level level) {
  return static_cast<int>(level) >= static_cast<int>(g_least.load(std::memory_order_relaxed));
}

// Bytes a logfmt value cannot hold unquoted: those JSON escapes (controls, DEL, the quote, the
// backslash), the space, '=' and every byte from 0x80 (UTF-8 is checked on the slow path, by
// hkp::append_json_escaped). Asked of every byte of every log line.
constexpr auto kNeedsQuotes = [] {
  std::array<bool, 256> t{};
  for (int c = 0; c < 256; ++c) {
    t[c] = c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == ' ' || c == '=';
  }
  return t;
}();

void append_value(std::string& out, std::string_view v) {
  // Most values need no quotes: one pass over them, and they go out as they are.
  if (!v.empty() && std::none_of(v.begin(), v.end(), [](char c) {
        return kNeedsQuotes[static_cast<unsigned char>(c)];
      })) {
    out += v;
    return;
  }
  out.push_back('"');
  hkp::append_json_escaped(out, v);
  out.push_back('"');
}

void append_json_string(std::string& out, std::string_view v) {
  out.push_back('"');
  hkp::append_json_escaped(out, v);
  out.push_back('"');
}

// "2026-12-01T13:52:01.", made once a second per thread (gmtime and printf were a tenth of an
// access line's cost), then the milliseconds.
void append_timestamp(std::string& line) {
  struct Second {
    std::int64_t at = -1;
    char text[32] = {};
    std::size_t size = 0;
  };
  thread_local Second second;
  const auto now = std::chrono::system_clock::now();
  const auto ms_total =
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
  const std::int64_t s = ms_total / 1000;
  if (s != second.at) {
    const std::time_t t = static_cast<std::time_t>(s);
    std::tm tm{};
    gmtime_r(&t, &tm);
    const int n = std::snprintf(second.text, sizeof second.text, "%04d-%02d-%02dT%02d:%02d:%02d.",
                                tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                                tm.tm_min, tm.tm_sec);
    second.size = n > 0 ? static_cast<std::size_t>(n) : 0;
    second.at = s;
  }
  line.append(second.text, second.size);
  const int ms = static_cast<int>(ms_total % 1000);
  line.push_back(static_cast<char>('0' + ms / 100));
  line.push_back(static_cast<char>('0' + ms / 10 % 10));
  line.push_back(static_cast<char>('0' + ms % 10));
  line.push_back('Z');
}

void format_line(std::string& line, Level level, std::string_view event,
                 std::initializer_list<Field> fields) {
  if (g_journal.load(std::memory_order_relaxed)) line += journal_prefix(level);
  if (g_format.load(std::memory_order_relaxed) == Format::json) {
    line += "{\"ts\":\"";
    append_timestamp(line);
    line += "\",\"level\":\"";
    line += level_name(level);
    line += "\",\"event\":";
    append_json_string(line, event);
    for (const auto& [k, v] : fields) {
      line.push_back(',');
      append_json_string(line, k);
      line.push_back(':');
      append_json_string(line, v);
    }
    line += "}\n";
    return;
  }
  line += "ts=";
  append_timestamp(line);
  line += " level=";
  line += level_name(level);
  line += " event=";
  append_value(line, event);
  for (const auto& [k, v] : fields) {
    line.push_back(' ');
    line += k;
    line.push_back('=');
    append_value(line, v);
  }
  line.push_back('\n');
}

// What one write(2) may carry: up to PIPE_BUF bytes go into a pipe (journald, a supervisor)
// whole, so lines of concurrent writers never interleave.
constexpr std::size_t kBatchBytes = 4096;
constexpr auto kBatchAge = std::chrono::milliseconds(100);

struct Batch {
  std::string lines;
  std::chrono::steady_clock::time_point first{};
  void flush() {
    if (lines.empty()) return;
    [[maybe_unused]] auto n = ::write(STDERR_FILENO, lines.data(), lines.size());
    lines.clear();
  }
  ~Batch() { flush(); }  // a thread that ends leaves nothing behind
};
thread_local Batch batch;

}  // namespace

void configure(Format format, Level least) {
  g_format.store(format, std::memory_order_relaxed);
  g_least.store(least, std::memory_order_relaxed);
}

void detect_journal() {
  // "DEVICE:INODE" of the stream journald gave this service, compared with what fd 2 is now (a
  // child whose stderr was redirected must not prefix lines for a file or a terminal).
  const char* stream = std::getenv("JOURNAL_STREAM");
  struct stat st {};
  if (stream == nullptr || ::fstat(STDERR_FILENO, &st) != 0) return;
  unsigned long long dev = 0, ino = 0;
  if (std::sscanf(stream, "%llu:%llu", &dev, &ino) != 2) return;
  g_journal.store(dev == st.st_dev && ino == st.st_ino, std::memory_order_relaxed);
}

void write(Level level, std::string_view event, std::initializer_list<Field> fields) {
  if (!wanted(level)) return;
  std::string line;
  format_line(line, level, event, fields);
  // One write(2) per line keeps concurrent lines from interleaving.
  [[maybe_unused]] auto n = ::write(STDERR_FILENO, line.data(), line.size());
}

void write_batched(Level level, std::string_view event, std::initializer_list<Field> fields) {
  if (!wanted(level)) return;
  thread_local std::string line;  // its memory reused: no allocation per access line
  line.clear();
  format_line(line, level, event, fields);
  const auto now = std::chrono::steady_clock::now();
  if (batch.lines.size() + line.size() > kBatchBytes || now - batch.first >= kBatchAge) {
    batch.flush();
  }
  if (line.size() > kBatchBytes) {  // alone, as write() would
    [[maybe_unused]] auto n = ::write(STDERR_FILENO, line.data(), line.size());
    return;
  }
  if (batch.lines.empty()) batch.first = now;
  batch.lines += line;
}

void flush_batched() { batch.flush(); }

namespace {

// A library message is written for each bad packet it meets; input made of thousands of them
// must not turn into thousands of lines. At most kLibraryLinesPerSecond per second; the rest
// are counted and reported in one line when the next second's first message comes.
constexpr int kLibraryLinesPerSecond = 20;

void library_line(std::string_view text) {
  static std::int64_t window = 0;
  static int in_window = 0;
  static std::uint64_t suppressed = 0;
  const std::int64_t second = std::chrono::duration_cast<std::chrono::seconds>(
                                  std::chrono::steady_clock::now().time_since_epoch())
                                  .count();
  if (second != window) {
    if (suppressed > 0) {
      warn("library_messages_suppressed", {{"count", std::to_string(suppressed)},
                                           {"limit_per_second", std::to_string(kLibraryLinesPerSecond)}});
    }
    window = second;
    in_window = 0;
    suppressed = 0;
  }
  if (in_window++ >= kLibraryLinesPerSecond) {
    ++suppressed;
    return;
  }
  warn("library_message", {{"text", text.substr(0, 1000)}});
}

// Called with the FILE's lock held, so the pending partial line and the counters above need no
// lock of their own.
ssize_t forward_library_output(void*, const char* buf, size_t size) {
  static std::string pending;
  pending.append(buf, size);
  for (auto nl = pending.find('\n'); nl != std::string::npos; nl = pending.find('\n')) {
    const std::string line = pending.substr(0, nl);
    pending.erase(0, nl + 1);
    if (!line.empty()) library_line(line);
  }
  if (pending.size() > 4096) {  // no newline in sight: do not grow without bound
    library_line(pending);
    pending.clear();
  }
  return static_cast<ssize_t>(size);
}

}  // namespace

void capture_library_stderr() {
  cookie_io_functions_t io{};
  io.write = forward_library_output;
  if (FILE* f = fopencookie(nullptr, "w", io)) {
    setvbuf(f, nullptr, _IOLBF, 0);
    stderr = f;  // glibc allows assigning the stream; fd 2 stays as it is
  }
}

}  // namespace hkpgw::gateway::log
