// The blocklist file: fingerprints as operators paste them, comments, and precise refusals.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sys/stat.h>

#include <ctime>

#include "cache/blocklist.hpp"
#include "support/harness.hpp"

using namespace hkpgw;
using Catch::Matchers::Contains;

TEST_CASE("the blocklist reads fingerprints as operators paste them", "[blocklist][unit]") {
  test::TempDir dir;
  const std::string file = dir / "blocked";
  const std::string fpr = "A2D09A19150279F966C7DE0E116CE4D8CC373801";
  test::write_file(file,
                   "# removed\n\n  a2d0 9a19 1502 79f9 66c7  de0e 116c e4d8 cc37 3801  # x\r\n" +
                       fpr + "\n");
  const auto b = cache::Blocklist::load(file);
  CHECK(b.all().size() == 1);  // the same key twice
  CHECK(b.contains_hex(fpr));
  CHECK(b.contains_hex("a2d09a19150279f966c7de0e116ce4d8cc373801"));
  CHECK_FALSE(b.contains_hex("B2D09A19150279F966C7DE0E116CE4D8CC373801"));
  CHECK_FALSE(b.contains_hex("not hex"));
  CHECK(cache::Blocklist::load("").empty());
  // A v6 key (RFC 9580: 64 digits) is blocked like a v4 one.
  const std::string v6 = "CB186C4F0609A697E4D52DFA6C722B0C1F1E27C18A56708F6525EC27BAD9ACC9";
  test::write_file(file, fpr + "\n" + v6 + "\n");
  CHECK(cache::Blocklist::load(file).contains_hex(v6));
  CHECK_FALSE(cache::Blocklist::load(file).contains_hex(v6.substr(0, 40)));

  test::write_file(file, fpr + "\n" + fpr.substr(0, 39) + "\n");
  CHECK_THROWS_WITH(cache::Blocklist::load(file), Contains(file + ":2: not a fingerprint"));
  CHECK_THROWS_WITH(cache::Blocklist::load(dir / "missing"), Contains("cannot read"));
}

TEST_CASE("a blocklist dated in the future is read once it stops changing", "[blocklist][unit]") {
  // Its time cannot say it has been left alone (this clock has not reached it): not changing
  // while the reader waits says so instead. Before, every reload failed for 10 s and gave up.
  test::TempDir dir;
  const std::string list = dir / "blocked";
  test::write_file(list, std::string(40, 'A') + "\n");
  const timespec times[2] = {{std::time(nullptr) + 3600, 0}, {std::time(nullptr) + 3600, 0}};
  REQUIRE(::utimensat(AT_FDCWD, list.c_str(), times, 0) == 0);
  const auto loaded = cache::Blocklist::load(list);
  CHECK(loaded.contains_hex(std::string(40, 'A')));
}
