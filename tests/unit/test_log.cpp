// Log lines: one event per line whatever the values hold.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <string>

#include "gateway/observe/log.hpp"
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

}  // namespace

TEST_CASE("log values are ASCII: control, DEL and 8-bit bytes are escaped", "[gateway][unit]") {
  const std::string line = stderr_of([] {
    hkpgw::gateway::log::warn("library_message",
                              {{"text", "a\nb\x1b[31m\x7f caf\xc3\xa9 \"q\" \\ ="}});
  });
  INFO(line);
  CHECK(std::count(line.begin(), line.end(), '\n') == 1);  // one line, the final newline
  CHECK(line.find("event=library_message text=\"a\\x0ab\\x1b[31m\\x7f caf\\xc3\\xa9 \\\"q\\\" \\\\ =\"") !=
        std::string::npos);
  for (const char c : line) {
    const auto u = static_cast<unsigned char>(c);
    CHECK((u == '\n' || (u >= 0x20 && u < 0x7f)));
  }
  // A plain value stays unquoted.
  const std::string plain = stderr_of([] { hkpgw::gateway::log::info("x", {{"k", "v1.2:3"}}); });
  CHECK(plain.find(" k=v1.2:3\n") != std::string::npos);
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
