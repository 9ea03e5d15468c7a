// Failing in a way users can read: with every upstream down a keyring refresh ends in seconds
// (the panic circuit breaker: one trial, then answers at once), a search without a match says
// "No keys found" on every front (what OpenKeychain looks for), and op=get with free text
// answers the matching keys as SKS and onak do.
#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>

#include "support/actors.hpp"

using namespace hkpgw::test;
using Catch::Matchers::Contains;

TEST_CASE("every upstream hung: a gpg refresh of ten keys gets its answers at once after one "
          "trial", "[integration][gpg][panic]") {
  TempDir dir;
  TestKeyserver ks(dir, "ks");
  ks.set_mode("hang");
  Gateway gw{
      GatewayConfig(dir)
          .upstreams({{"ks", ks.url()}})
          .upstreams_table(
              "probe_interval = \"200ms\"\nprobe_timeout = \"300ms\"\nunhealthy_threshold = 1\n")};
  REQUIRE(gw.started());
  REQUIRE(gw.process().wait_for("upstream=ks state=unhealthy"));

  // Ten keys nobody has cached: each would have waited panic_timeout (1 s), six times over
  // (gpg asks again after a 503).
  std::vector<std::string> args = {"--recv-keys"};
  for (int i = 0; i < 10; ++i) {
    args.push_back("0123456789ABCDEF0123456789ABCDEF0123456" + std::to_string(i));
  }
  Gpg gpg;
  const auto started = std::chrono::steady_clock::now();
  const auto r = gpg(args, gw.hkp_url());
  const double took =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  INFO("gpg --recv-keys of 10 keys with every upstream hung took " << took << " s\n" << r.err);
  CHECK(r.exit_code != 0);
  REQUIRE(eventually([&] { return count_of(gw.log(), "status=503") >= 10; }));
  const auto misses = count_of(gw.log(), "status=503");
  const auto trials = count_of(gw.log(), "event=upstream_failed");
  INFO(misses << " answers 503, " << trials << " trials asked the upstream");
  CHECK(trials >= 1);
  CHECK(trials * 5 < misses);  // one trial per 5 s, not one per miss
  // Two misses in a row: if the first is a trial, it fails and the second is answered at once.
  const auto first = gw.get(get_target("0123456789ABCDEF0123456789ABCDEF0123456A"));
  const auto second = gw.get(get_target("0123456789ABCDEF0123456789ABCDEF0123456B"));
  CHECK(first.status == 503);
  CHECK(second.status == 503);
  CHECK_THAT(second.body, Contains("every upstream is unreachable"));
  CHECK_THAT(second.body, Contains("not asked: the last attempt failed, the next one is in"));
}

TEST_CASE("a search without a match says No keys found on every front",
          "[integration][openkeychain]") {
  TempDir dir;
  TestKeyserver ks(dir, "ks");
  Gateway gw{GatewayConfig(dir).upstreams({{"ks", ks.url()}})};
  REQUIRE(gw.started());
  const std::string nobody = "0123456789ABCDEF0123456789ABCDEF01234567";
  for (const std::string& target : std::vector<std::string>{
           "/pks/lookup?op=index&options=mr&search=nobody@example.org",
        "/pks/lookup?op=get&options=mr&search=0x" + nobody,
        "/pks/lookup?op=index&options=mr&search=nothing+matches+this",
        "/vks/v1/by-fingerprint/" + nobody, "/vks/v1/by-email/nobody%40example.org",
        "/pks/v2/certs/by-vfingerprint/04" + nobody}) {
    INFO(target);
    const auto r = gw.get(target);
    CHECK(r.status == 404);
    CHECK_THAT(r.body, Contains("No keys found"));
  }
}

TEST_CASE("op=get with free text answers the matching keys, as SKS does",
          "[integration][hkp-client]") {
  TempDir dir;
  TestKeyserver ks(dir, "ks");
  Gateway gw{GatewayConfig(dir).upstreams({{"ks", ks.url()}})};
  REQUIRE(gw.started());
  const auto r = gw.get("/pks/lookup?op=get&options=mr&search=Team+Rotation");
  INFO(r.body);
  REQUIRE(r.status == 200);
  CHECK_THAT(r.body, Contains("-----BEGIN PGP PUBLIC KEY BLOCK-----"));
  CHECK(count_of(r.body, "-----BEGIN PGP PUBLIC KEY BLOCK-----") == 1);  // one block, two keys
  Gpg gpg;
  write_file(dir / "team.asc", r.body);
  REQUIRE(gpg({"--import", dir / "team.asc"}).exit_code == 0);
  const auto fprs = gpg.fingerprints();
  CHECK(fprs.size() == 2);
  CHECK(std::count(fprs.begin(), fprs.end(), fixture("TEAM1_FPR")) == 1);
  CHECK(std::count(fprs.begin(), fprs.end(), fixture("TEAM2_FPR")) == 1);
  // No match: 404 with the same words as op=index.
  const auto none = gw.get("/pks/lookup?op=get&options=mr&search=nothing+matches+this");
  CHECK(none.status == 404);
  CHECK_THAT(none.body, Contains("No keys found"));
}

TEST_CASE("op=get with free text that matches 150 keys answers the first 10",
          "[integration][hkp-client]") {
  TempDir dir;
  REQUIRE(run({HKPGW_KEYGEN, "150", dir / "many.asc", "many", "shared"}).exit_code == 0);
  TestKeyserver ks(dir, "ks", "server", "normal", {dir / "many.asc"});
  Gateway gw{GatewayConfig(dir).upstreams({{"ks", ks.url()}})};
  REQUIRE(gw.started());
  const auto r = gw.get("/pks/lookup?op=get&options=mr&search=Bulk+User");
  REQUIRE(r.status == 200);
  const auto js = openpgpjs_read(dir / "answer.asc", r.body);
  REQUIRE(js.exit_code == 0);
  CHECK(count_of(js.out, "\n") == 10);  // one line per key: the first 10 of the listing
  CHECK(ks.count("gets") <= 10);        // one upstream fetch per key answered, at most
}
