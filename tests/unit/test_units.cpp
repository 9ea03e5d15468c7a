#include <catch2/catch.hpp>

#include "config/units.hpp"

using namespace hkpgw::config;
using namespace std::chrono_literals;

TEST_CASE("durations parse with their units", "[config][unit]") {
  auto [text, ms] = GENERATE(table<std::string, long>({{"500ms", 500},
                                                       {"30s", 30'000},
                                                       {"5m", 300'000},
                                                       {"1h", 3'600'000},
                                                       {"7d", 604'800'000},
                                                       {"0", 0},
                                                       {"0s", 0}}));
  auto d = parse_duration(text);
  REQUIRE(d.ok());
  CHECK(d.value().count() == ms);
}

TEST_CASE("bad durations say what was expected", "[config][unit]") {
  auto text = GENERATE("", "s", "10", "1.5s", "10 s", "-1s", "3w", "99999999d");
  auto d = parse_duration(text);
  REQUIRE_FALSE(d.ok());
  CHECK_FALSE(d.error().empty());
}

TEST_CASE("sizes parse with binary units", "[config][unit]") {
  auto [text, bytes] = GENERATE(table<std::string, std::uint64_t>(
      {{"4096", 4096}, {"512B", 512}, {"16KiB", 16384}, {"1MiB", 1048576}, {"1GiB", 1ULL << 30}}));
  auto s = parse_size(text);
  REQUIRE(s.ok());
  CHECK(s.value() == bytes);
}

TEST_CASE("ambiguous or malformed sizes are refused", "[config][unit]") {
  auto text = GENERATE("1KB", "1MB", "MiB", "1.5MiB", "-1", "");
  CHECK_FALSE(parse_size(text).ok());
}

TEST_CASE("listen addresses", "[config][unit]") {
  auto a = parse_listen("127.0.0.1:11371");
  REQUIRE(a.ok());
  CHECK(a.value().host == "127.0.0.1");
  CHECK(a.value().port == 11371);
  auto v6 = parse_listen("[::1]:8080");
  REQUIRE(v6.ok());
  CHECK(v6.value().host == "::1");
  CHECK(v6.value().text() == "[::1]:8080");
  CHECK_FALSE(parse_listen("127.0.0.1").ok());
  CHECK_FALSE(parse_listen("::1:80").ok());
  CHECK_FALSE(parse_listen("host:99999").ok());
  CHECK_FALSE(parse_listen(":80").ok());
}

TEST_CASE("upstream URLs are HTTPS only", "[config][unit]") {
  auto u = parse_upstream_url("https://keys.openpgp.org");
  REQUIRE(u.ok());
  CHECK(u.value().host == "keys.openpgp.org");
  CHECK(u.value().port == 443);
  auto h = parse_upstream_url("hkps://keyserver.example:8443/prefix/");
  REQUIRE(h.ok());
  CHECK(h.value().port == 8443);
  CHECK(h.value().base_path == "/prefix");
  auto refused = GENERATE("http://keys.example", "hkp://keys.example", "ftp://x", "keys.example",
                          "https://user:pw@keys.example", "https://keys.example/?q=1");
  auto r = parse_upstream_url(refused);
  REQUIRE_FALSE(r.ok());
  CHECK_FALSE(r.error().empty());
}

TEST_CASE("http upstreams are refused with the scheme named", "[config][unit]") {
  auto r = parse_upstream_url("http://keys.example");
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().find("HTTPS only") != std::string::npos);
  CHECK(r.error().find("http://") != std::string::npos);
}

TEST_CASE("public addresses are told from the gateway's own networks", "[config][unit]") {
  auto is_public = [](const char* text) {
    const auto n = hkpgw::config::parse_network(text);
    REQUIRE(n.ok());
    return hkpgw::config::is_public_address(n.value().family, n.value().bytes);
  };
  for (const char* a : {"127.0.0.5", "10.99.99.1", "172.16.99.1", "192.168.99.1", "169.254.99.1",
                        "100.64.0.1", "0.0.0.0", "224.0.0.1", "255.255.255.255", "::1", "::",
                        "fd00:99::1", "fe80::1", "ff02::1", "::ffff:127.0.0.1",
                        "::ffff:10.0.0.1", "64:ff9b::a00:1", "::7f00:1", "2001:db8::1"}) {
    INFO(a);
    CHECK_FALSE(is_public(a));
  }
  for (const char* a : {"8.8.8.8", "192.0.3.1", "172.32.0.1", "2a01:4f8::1", "::ffff:8.8.8.8",
                        "64:ff9b::808:808"}) {
    INFO(a);
    CHECK(is_public(a));
  }
}

TEST_CASE("names a resolver reads as numbers are not domain names", "[config][unit]") {
  using hkpgw::config::valid_domain_name;
  for (const char* d : {"127.0.0.0x5", "0xa.0x63.0x63.0x1", "127.1", "2130706433.0", "1.2.3.4",
                        "example.1a", "test.localhost"}) {
    INFO(d);
    CHECK_FALSE(valid_domain_name(d));
  }
  for (const char* d : {"example.org", "0x5.example.org", "123.example.com", "xn--80ak6aa92e.com"}) {
    INFO(d);
    CHECK(valid_domain_name(d));
  }
}
