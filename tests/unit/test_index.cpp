#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdio>

#include "hkp/index.hpp"

using namespace hkpgw::hkp;
using Catch::Matchers::Contains;

namespace {

IndexEntry sample() {
  IndexEntry e;
  e.id = "4DC89C5EAD0C41A5D76E3E0DF8864A8BB8E106B6";
  e.algo = 22;
  e.bits = 255;
  e.created = 1700000000;
  e.expires = 1800000000;
  e.uids = {IndexUid{"Alice Work: Ops <alice@work.example>", 1700000001, 0, false},
            IndexUid{"Zoë 100% <z@example.org>", 1700000002, 0, true}};
  return e;
}

}  // namespace

TEST_CASE("mr index: info line, all fields, escaping", "[hkp][unit]") {
  const std::vector<IndexEntry> entries{sample()};
  const std::string out = format_mr_index(entries, 1750000000);
  CHECK(out ==
        "info:1:1\n"
        "pub:4DC89C5EAD0C41A5D76E3E0DF8864A8BB8E106B6:22:255:1700000000:1800000000:\n"
        "uid:Alice%20Work%3A%20Ops%20<alice@work.example>:1700000001::\n"
        "uid:Zo%C3%AB%20100%25%20<z@example.org>:1700000002::r\n");
}

TEST_CASE("mr index flags: revoked, expired at `now`, disabled", "[hkp][unit]") {
  IndexEntry e = sample();
  e.revoked = true;
  e.uids.resize(1);
  CHECK_THAT(format_mr_index(std::vector{e}, 1900000000),
             Contains(":1700000000:1800000000:re\n"));
  CHECK_THAT(format_mr_index(std::vector{e}, 1750000000), Contains(":1700000000:1800000000:r\n"));
  CHECK(format_mr_index({}, 0) == "info:1:0\n");
}

TEST_CASE("mr index round trip through the upstream parser", "[hkp][unit]") {
  const std::vector<IndexEntry> entries{sample()};
  auto back = parse_mr_index(format_mr_index(entries, 0));
  REQUIRE(back.has_value());
  REQUIRE(back->size() == 1);
  CHECK((*back)[0] == entries[0]);
}

TEST_CASE("upstream mr parsing is tolerant like gpg", "[hkp][unit]") {
  const std::string body =
      "info:1:3\r\n"
      "pub:0x4dc89c5ead0c41a5d76e3e0df8864a8bb8e106b6:22:255:1700000000::r\r\n"
      "uid:Alice+Example%20%3Ca@b%3E:1700000000::\r\n"
      "uat:1:2:3\r\n"
      "pub:" + std::string(64, 'A') + ":22:255:1::\r\n"   // v6: dropped with its uid
      "uid:Six:1::\r\n"
      "pub:F8864A8BB8E106B6\n";                           // key ID only, fields missing
  auto r = parse_mr_index(body);
  REQUIRE(r.has_value());
  REQUIRE(r->size() == 2);
  CHECK((*r)[0].id == "4DC89C5EAD0C41A5D76E3E0DF8864A8BB8E106B6");
  CHECK((*r)[0].revoked);
  REQUIRE((*r)[0].uids.size() == 1);
  CHECK((*r)[0].uids[0].text == "Alice+Example <a@b>");  // '+' is not decoded, like gpg
  CHECK((*r)[1].id == "F8864A8BB8E106B6");
  CHECK((*r)[1].uids.empty());
}

TEST_CASE("an unknown index version is an error", "[hkp][unit]") {
  auto r = parse_mr_index("info:2:1\npub:F8864A8BB8E106B6\n");
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().status != 502);
}

TEST_CASE("HTML index escapes user IDs and links fingerprints", "[hkp][unit]") {
  IndexEntry e = sample();
  e.uids[0].text = "<script>alert(1)</script>";
  const std::string html = format_html_index(std::vector{e}, "a<b", true, 1750000000);
  CHECK_THAT(html, Contains("&lt;script&gt;"));
  CHECK_FALSE(html.find("<script>") != std::string::npos);
  CHECK_THAT(html, Contains("search=0x4DC89C5EAD0C41A5D76E3E0DF8864A8BB8E106B6"));
  CHECK_THAT(html, Contains("a&lt;b"));
}

TEST_CASE("a hostile upstream listing is bounded: keys, user IDs per key, bytes per user ID",
          "[hkp][unit]") {
  std::string many = "info:1:10000\n";
  for (int i = 0; i < 10000; ++i) {
    char id[41];
    std::snprintf(id, sizeof id, "%040X", i);
    many += "pub:" + std::string(id) + ":22:255:1700000000::\nuid:k" + std::to_string(i) + ":::\n";
  }
  const auto keys = parse_mr_index(many);
  REQUIRE(keys.has_value());
  CHECK(keys->size() == kMaxIndexEntries);

  std::string uids = "pub:" + std::string(40, 'A') + ":22:255:1700000000::\n";
  for (int i = 0; i < 1000; ++i) uids += "uid:u" + std::to_string(i) + ":::\n";
  uids += "uid:" + std::string(100000, 'x') + ":::\n";
  const auto one = parse_mr_index(uids);
  REQUIRE(one.has_value());
  REQUIRE(one->size() == 1);
  CHECK(one->front().uids.size() == kMaxIndexUids);

  const auto huge = parse_mr_index("pub:" + std::string(40, 'B') + ":22:255:1::\nuid:" +
                                   std::string(100000, 'y') + ":::\n");
  REQUIRE(huge.has_value());
  REQUIRE(huge->front().uids.size() == 1);
  CHECK(huge->front().uids.front().text.size() == kMaxIndexUidBytes);
}

TEST_CASE("dates an upstream listing cannot render are left out, never read past a buffer",
          "[hkp][unit]") {
  // Found by fuzz_mr_index: a creation time in the year 5.7 billion made strftime fill its
  // buffer without a NUL (a stack overflow read, under ASan an abort).
  const std::string listing =
      "info:1:1\npub:8D6869403CA846641B91F98BE7304863BBD6EEC7:22:255:179611611859188117:"
      "253402300800:\nuid:Dave:179611611859188117::\n";
  const auto entries = parse_mr_index(listing);
  REQUIRE(entries.has_value());
  REQUIRE(entries->size() == 1);
  const std::string html = format_html_index(*entries, "dave", true, 1750000000);
  CHECK_THAT(html, Contains("8D6869403CA846641B91F98BE7304863BBD6EEC7"));
  CHECK(html.find("179611") == std::string::npos);  // no date shown for it
  CHECK(std::none_of(html.begin(), html.end(),       // and no stack bytes either
                     [](unsigned char c) { return c < 0x20 && c != '\n'; }));
  IndexEntry e = sample();
  e.created = 253402300799;  // 9999-12-31T23:59:59Z: the last one shown
  CHECK_THAT(format_html_index(std::vector{e}, "x", true, 1750000000), Contains("9999-12-31"));
}
