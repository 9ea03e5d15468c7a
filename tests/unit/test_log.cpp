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
