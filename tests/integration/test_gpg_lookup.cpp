// Real GnuPG (gpg + dirmngr, HTTP/1.0, no-cache headers, its own escaping) through the gateway.
#include <catch2/catch.hpp>

#include <algorithm>

#include "support/actors.hpp"

using namespace hkpgw::test;
using Catch::Matchers::Contains;

namespace {

bool has(const std::vector<std::string>& v, const std::string& x) {
  return std::find(v.begin(), v.end(), x) != v.end();
}

}  // namespace

TEST_CASE("gpg --recv-keys by fingerprint, then from the cache", "[integration][gpg]") {
  TempDir dir;
  TestKeyserver ks(dir, "ks");
  Gateway gw{GatewayConfig(dir).upstreams({{"ks", ks.url()}})};
  REQUIRE(gw.started());
  const std::string fpr = fixture("ALICE_FPR");

  Gpg first;
  const auto r = first({"--recv-keys", fpr}, gw.hkp_url());
  INFO(r.err);
  CHECK(r.exit_code == 0);
  CHECK(has(first.fingerprints(), fpr));
  CHECK(ks.lookups() == 1);

  Gpg second;  // another user of the organisation
  CHECK(second({"--recv-keys", fpr}, gw.hkp_url()).exit_code == 0);
  CHECK(has(second.fingerprints(), fpr));
  CHECK(ks.lookups() == 1);  // answered by the cache
  CHECK(gw.process().wait_for("cache=hit"));  // access lines come in batches
}

TEST_CASE("gpg --recv-keys by long key ID, then the subkey IDs hit the cache",
          "[integration][gpg]") {
  TempDir dir;
  TestKeyserver ks(dir, "ks");
  Gateway gw{GatewayConfig(dir).upstreams({{"ks", ks.url()}})};
  REQUIRE(gw.started());
  const std::string fpr = fixture("BOB_FPR");
  Gpg gpg;
  const auto r = gpg({"--recv-keys", fpr.substr(24)}, gw.hkp_url());
  INFO(r.err);
  CHECK(r.exit_code == 0);
  CHECK(has(gpg.fingerprints(), fpr));

  const std::string alice_sub = fixture("ALICE_SUB_FPR");
  Gpg other;
  CHECK(other({"--recv-keys", alice_sub}, gw.hkp_url()).exit_code == 0);  // by subkey fingerprint
  CHECK(has(other.fingerprints(), fixture("ALICE_FPR")));
  const int seen = ks.lookups();
  Gpg third;
  CHECK(third({"--recv-keys", fixture("ALICE_FPR").substr(24)}, gw.hkp_url()).exit_code == 0);
  CHECK(ks.lookups() == seen);
}

TEST_CASE("gpg --search-keys by email lists keys with user IDs and flags", "[integration][gpg]") {
  TempDir dir;
  TestKeyserver ks(dir, "ks");
  Gateway gw{GatewayConfig(dir).upstreams({{"ks", ks.url()}})};
  REQUIRE(gw.started());
  Gpg gpg;
  const auto r = gpg({"--with-colons", "--search-keys", "team@example.org"}, gw.hkp_url());
  INFO(r.out << r.err);
  CHECK_THAT(r.out, Contains("info:1:2"));
  CHECK_THAT(r.out, Contains(fixture("TEAM1_FPR")));
  CHECK_THAT(r.out, Contains(fixture("TEAM2_FPR")));
  CHECK_THAT(r.out, Contains("uid:Team%20Rotation%201%20<team@example.org>:"));

  const auto carol = gpg({"--with-colons", "--search-keys", "carol@example.org"}, gw.hkp_url());
  INFO(carol.out);
  CHECK_THAT(carol.out, Contains(fixture("CAROL_FPR")));
  const auto pub = carol.out.find("pub:" + fixture("CAROL_FPR"));
  REQUIRE(pub != std::string::npos);
  CHECK_THAT(carol.out.substr(pub, carol.out.find('\n', pub) - pub), Catch::Matchers::EndsWith("r"));
}

TEST_CASE("gpg --locate-external-keys fetches by address (op=get&exact=on)",
          "[integration][gpg]") {
  TempDir dir;
  TestKeyserver ks(dir, "ks");
  Gateway gw{GatewayConfig(dir).upstreams({{"ks", ks.url()}})};
  REQUIRE(gw.started());
  Gpg gpg;
  const auto r = gpg({"--auto-key-locate", "clear,keyserver", "--locate-external-keys",
                      "alice@example.org"},
                     gw.hkp_url());
  INFO(r.err);
  CHECK(r.exit_code == 0);
  CHECK(has(gpg.fingerprints(), fixture("ALICE_FPR")));
  CHECK(gw.process().wait_for("op=get kind=email"));  // access lines come in batches
}
