// WKD addressing: z-base-32, the hashed local part (the draft's and GnuPG's vectors), the URLs.
#include <catch2/catch.hpp>

#include "hkp/wkd.hpp"

using namespace hkpgw::hkp;

TEST_CASE("z-base-32 and the WKD hash match the published test vectors", "[wkd][unit]") {
  CHECK(wkd_hash("test1") == "stnkabub89rpcphiz4ppbxixkwyt1pic");  // the draft's example
  CHECK(wkd_hash("Joe.Doe") == "iy9q119eutrkn8s1mk4r39qejnbu3n5q");  // ASCII letters folded
  CHECK(wkd_hash("eschwartz") == "ycx3iaqih9tzkfk7dp8jo9xrdepu5m8u");
  CHECK(zbase32("") == "");
  CHECK(zbase32(std::string(1, '\0')) == "yy");  // 8 bits: two characters, zero-padded
  CHECK(zbase32("\xff") == "9h");
}

TEST_CASE("an address's advanced and direct WKD URLs", "[wkd][unit]") {
  auto u = wkd_urls("Joe.Doe@Example.ORG");
  REQUIRE(u.has_value());
  CHECK(u->advanced.url() ==
        "https://openpgpkey.example.org/.well-known/openpgpkey/example.org/hu/"
        "iy9q119eutrkn8s1mk4r39qejnbu3n5q?l=Joe.Doe");
  CHECK(u->direct.url() ==
        "https://example.org/.well-known/openpgpkey/hu/iy9q119eutrkn8s1mk4r39qejnbu3n5q?l=Joe.Doe");
  CHECK(u->domain == "example.org");
  CHECK(u->advanced.host == "openpgpkey.example.org");
  CHECK(u->direct.host == "example.org");
  CHECK(wkd_urls("a+b@x.example")->direct.target.ends_with("?l=a%2Bb"));
  CHECK_FALSE(wkd_urls("no-at-sign"));
  CHECK_FALSE(wkd_urls("@example.org"));
  CHECK_FALSE(wkd_urls("joe@"));
  CHECK_FALSE(wkd_urls("joe@exa_mple.org"));
  CHECK_FALSE(wkd_urls("joe@evil.example/../x"));
  // Input never names a host the gateway should not connect to.
  CHECK_FALSE(wkd_urls("joe@127.0.0.1"));
  CHECK_FALSE(wkd_urls("joe@localhost"));
  CHECK_FALSE(wkd_urls("joe@intranet"));
  CHECK_FALSE(wkd_urls("joe@db.localhost"));
  CHECK_FALSE(wkd_urls("joe@[::1]"));
  CHECK_FALSE(wkd_urls("joe@a..example"));
  CHECK(wkd_urls("joe@10.example"));  // a name whose labels are digits, but for the last

}
