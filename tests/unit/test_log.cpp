// Log lines: one event per line whatever the values hold.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <catch2/catch.hpp>
#include <cstdlib>
#include <string>

#include "gateway/observe/log.hpp"
#include "hkp/text.hpp"
#include "support/harness.hpp"

namespace {

// What `fn` writes to file descriptor 2.
template <class F>
std::string stderr_of(F fn) {
  hkpgw::test::TempDir dir;
  const std::string path = dir / "err";
  const int saved = ::dup(2);
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  ::dup2(fd, 2);
  fn();
  ::dup2(saved, 2);
  ::close(fd);
  ::close(saved);
  return hkpgw::test::read_file(path);
}

namespace logs = hkpgw::gateway::log;

// Every byte of `s` is part of well-formed UTF-8.
bool valid_utf8(std::string_view s) {
  for (std::size_t i = 0; i < s.size();) {
    if (static_cast<unsigned char>(s[i]) < 0x80) {
      ++i;
      continue;
    }
    const std::size_t n = hkpgw::hkp::utf8_sequence(s.substr(i));
    if (n == 0) return false;
    i += n;
  }
  return true;
}

// A value an attacker chose: a line break, a terminal colour, DEL, UTF-8 to keep, quotes and a
// backslash, a right-to-left override and a C1 CSI (both valid UTF-8, both escaped), and a byte
// that is not UTF-8.
const std::string kHostile =
    "a\nb\x1b[31m\x7f caf\xc3\xa9 \"q\" \\ = \xe2\x80\xae rlo \xc2\x9b csi \xff end";
// What a JSON or logfmt reader gets back: the same, with U+FFFD for the byte that was not UTF-8.
const std::string kHostileRead =
    "a\nb\x1b[31m\x7f caf\xc3\xa9 \"q\" \\ = \xe2\x80\xae rlo \xc2\x9b csi \xef\xbf\xbd end";

}  // namespace

TEST_CASE("log values keep UTF-8 and escape what could forge a line, a field or a display",
          "[gateway][unit]") {
  const std::string line = stderr_of([] { logs::warn("library_message", {{"text", kHostile}}); });
  INFO(line);
  CHECK(std::count(line.begin(), line.end(), '\n') == 1);  // one line, the final newline
  CHECK(
      line.find(
          R"(event=library_message text="a\nb\u001b[31m\u007f café \"q\" \\ = \u202e rlo \u009b csi \ufffd end")") !=
      std::string::npos);
  CHECK(valid_utf8(line));
  for (const char c : line) CHECK((c == '\n' || static_cast<unsigned char>(c) >= 0x20));
  // A plain value stays unquoted; so does nothing else.
  const std::string plain = stderr_of([] { logs::info("x", {{"k", "v1.2:3"}, {"e", ""}}); });
  CHECK(plain.find(" k=v1.2:3 e=\"\"\n") != std::string::npos);
}

TEST_CASE("log_format json writes one object per line that reads back to the values",
          "[gateway][unit]") {
  logs::configure(logs::Format::json, logs::Level::info);
  const std::string line = stderr_of([] {
    logs::warn("library_message", {{"text", kHostile}, {"n", "7"}});
    logs::flush_batched();
  });
  const std::string batched = stderr_of([] {
    logs::write_batched(logs::Level::info, "request", {{"agent", kHostile}});
    logs::flush_batched();
  });
  logs::configure(logs::Format::logfmt, logs::Level::info);
  INFO(line);
  REQUIRE(std::count(line.begin(), line.end(), '\n') == 1);
  boost::system::error_code ec;
  const boost::json::value v = boost::json::parse(line, ec);
  REQUIRE_FALSE(ec);
  const auto& o = v.as_object();
  CHECK(o.at("level").as_string() == "warn");
  CHECK(o.at("event").as_string() == "library_message");
  CHECK(std::string(o.at("text").as_string()) == kHostileRead);
  CHECK(o.at("n").as_string() == "7");
  CHECK(std::string(o.at("ts").as_string()).ends_with("Z"));
  const boost::json::value b = boost::json::parse(batched, ec);
  REQUIRE_FALSE(ec);
  CHECK(std::string(b.as_object().at("agent").as_string()) == kHostileRead);
}

TEST_CASE("log_level drops the lines under it, batched ones too", "[gateway][unit]") {
  logs::configure(logs::Format::logfmt, logs::Level::warn);
  const std::string out = stderr_of([] {
    logs::info("dropped_info");
    logs::write_batched(logs::Level::info, "request", {{"status", "200"}});
    logs::write_batched(logs::Level::warn, "request", {{"status", "503"}});
    logs::warn("kept_warn");
    logs::error("kept_error");
    logs::flush_batched();
  });
  logs::configure(logs::Format::logfmt, logs::Level::error);
  const std::string only_errors = stderr_of([] {
    logs::warn("dropped_warn");
    logs::error("kept_error");
  });
  logs::configure(logs::Format::logfmt, logs::Level::info);
  INFO(out);
  CHECK(out.find("dropped") == std::string::npos);
  CHECK(out.find("status=200") == std::string::npos);
  CHECK(out.find("level=warn event=request status=503") != std::string::npos);
  CHECK(out.find("event=kept_warn") != std::string::npos);
  CHECK(out.find("event=kept_error") != std::string::npos);
  CHECK(only_errors.find("dropped") == std::string::npos);
  CHECK(only_errors.find("event=kept_error") != std::string::npos);
}

TEST_CASE("under journald each line starts with its syslog priority", "[gateway][unit]") {
  hkpgw::test::TempDir dir;
  const std::string path = dir / "journal-stream";
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  REQUIRE(fd >= 0);
  struct stat st {};
  REQUIRE(::fstat(fd, &st) == 0);
  const int saved = ::dup(2);
  ::dup2(fd, 2);
  // What systemd sets for a service whose stderr is the journal: that stream's device:inode.
  ::setenv("JOURNAL_STREAM", (std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino)).c_str(),
           1);
  logs::detect_journal();
  logs::info("an_info");
  logs::warn("a_warning");
  logs::error("an_error");
  // Another stream (stderr redirected to a file by whoever started us): no prefix.
  ::setenv("JOURNAL_STREAM", "1:2", 1);
  logs::detect_journal();
  logs::info("not_journal");
  ::unsetenv("JOURNAL_STREAM");
  logs::detect_journal();
  ::dup2(saved, 2);
  ::close(saved);
  ::close(fd);
  const std::string out = hkpgw::test::read_file(path);
  INFO(out);
  CHECK(out.find("<6>ts=") == 0);
  CHECK(out.find("\n<4>ts=") != std::string::npos);
  CHECK(out.find("level=warn event=a_warning") != std::string::npos);
  CHECK(out.find("\n<3>ts=") != std::string::npos);
  CHECK(out.find("\nts=") != std::string::npos);  // the last line, unprefixed
  CHECK(out.find("event=not_journal") > out.find("\nts="));
}

TEST_CASE("batched lines wait for a flush, grouped, and none is lost or cut", "[gateway][unit]") {
  namespace log = hkpgw::gateway::log;
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  ::fcntl(fds[0], F_SETFL, O_NONBLOCK);
  const int saved = ::dup(2);
  ::dup2(fds[1], 2);
  std::string all;
  char buf[65536];
  auto drain = [&] {
    for (ssize_t n; (n = ::read(fds[0], buf, sizeof buf)) > 0;) all.append(buf, static_cast<std::size_t>(n));
  };
  for (int i = 0; i < 40; ++i) {
    log::write_batched(log::Level::info, "request", {{"n", std::to_string(i)}, {"pad", std::string(150, 'x')}});
  }
  drain();
  const std::size_t before_flush = static_cast<std::size_t>(std::count(all.begin(), all.end(), '\n'));
  log::flush_batched();
  ::dup2(saved, 2);
  ::close(saved);
  drain();
  ::close(fds[1]);
  ::close(fds[0]);
  // 40 lines of ~230 bytes do not fit one 4 KiB batch: some went out as full batches, the rest
  // waited for the flush.
  CHECK(before_flush > 0);
  CHECK(before_flush < 40);
  CHECK(std::count(all.begin(), all.end(), '\n') == 40);
  std::size_t start = 0;
  for (int i = 0; i < 40; ++i) {  // in order, each line whole
    const auto end = all.find('\n', start);
    REQUIRE(end != std::string::npos);
    const std::string line = all.substr(start, end - start);
    CHECK(line.starts_with("ts="));
    CHECK(line.find(" n=" + std::to_string(i) + " pad=") != std::string::npos);
    start = end + 1;
  }
}
