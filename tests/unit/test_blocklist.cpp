// The blocklist file: fingerprints as operators paste them, comments, and precise refusals.
#include <catch2/catch.hpp>

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

  test::write_file(file, fpr + "\n" + fpr.substr(0, 39) + "\n");
  CHECK_THROWS_WITH(cache::Blocklist::load(file), Contains(file + ":2: not a fingerprint"));
  CHECK_THROWS_WITH(cache::Blocklist::load(dir / "missing"), Contains("cannot read"));
}
