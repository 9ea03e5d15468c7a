#include "gateway/log.hpp"

#include <cstdio>

#include <unistd.h>

#include <chrono>
#include <ctime>

namespace hkpgw::gateway::log {
namespace {

const char* level_name(Level l) {
  switch (l) {
    case Level::debug: return "debug";
    case Level::info: return "info";
    case Level::warn: return "warn";
    case Level::error: return "error";
  }
  return "?";
}

void append_value(std::string& out, std::string_view v) {
  const bool quote = v.empty() || v.find_first_of(" \"=\t") != std::string_view::npos;
  if (!quote) {
    for (char c : v) out.push_back(static_cast<unsigned char>(c) < 0x20 ? '?' : c);
    return;
  }
  out.push_back('"');
  for (char c : v) {
    if (c == '"' || c == '\\') out.push_back('\\');
    out.push_back(static_cast<unsigned char>(c) < 0x20 ? '?' : c);
  }
  out.push_back('"');
}

}  // namespace

void write(Level level, std::string_view event, std::initializer_list<Field> fields) {
  const auto now = std::chrono::system_clock::now();
  const std::time_t t = std::chrono::system_clock::to_time_t(now);
  const auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm tm{};
  gmtime_r(&t, &tm);
  char ts[64];
  std::snprintf(ts, sizeof ts, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms));
  std::string line = "ts=";
  line += ts;
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
  // One write(2) per line keeps concurrent lines from interleaving.
  [[maybe_unused]] auto n = ::write(STDERR_FILENO, line.data(), line.size());
}

namespace {

// Called with the FILE's lock held, so the pending partial line needs no lock of its own.
ssize_t forward_library_output(void*, const char* buf, size_t size) {
  static std::string pending;
  pending.append(buf, size);
  for (auto nl = pending.find('\n'); nl != std::string::npos; nl = pending.find('\n')) {
    const std::string line = pending.substr(0, nl);
    pending.erase(0, nl + 1);
    if (!line.empty()) warn("library_message", {{"text", std::string_view(line).substr(0, 1000)}});
  }
  if (pending.size() > 4096) {  // no newline in sight: do not grow without bound
    warn("library_message", {{"text", std::string_view(pending).substr(0, 1000)}});
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
