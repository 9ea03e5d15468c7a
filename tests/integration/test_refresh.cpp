// The refresher ([refresh]): cached keys are asked of the upstream again on the gateway's own
// schedule, with no client asking, so a revocation published upstream reaches the cache within
// the period; operators see it in /metrics and can ask for a refresh with the admin API.
#include <catch2/catch.hpp>

#include <chrono>
#include <csignal>

#include "support/actors.hpp"

using namespace hkpgw::test;
using Catch::Matchers::Contains;

namespace {

const std::string kToken = "refresh-token-0123456789abcdef";

// The value of one sample in /metrics ("name{labels}"), -1 when it is not there.
double metric(const Gateway& gw, const std::string& sample) {
  const std::string m = http_get(gw.admin(), "/metrics").body;
  const auto at = m.find("\n" + sample + " ");
  if (at == std::string::npos) return -1;
  return std::stod(m.substr(at + sample.size() + 2));
}

HttpResult admin_post(const Gateway& gw, const std::string& path) {
  return http_request(gw.admin(), "POST", path, "", {"Authorization: Bearer " + kToken});
}


}  // namespace

TEST_CASE("a revocation published upstream reaches the cache with no client asking",
          "[integration][refresh]") {
  TempDir dir;
  TestKeyserver ks(dir, "ks", "server", "normal", {"frank-unrevoked.asc", "alice.asc"});
  Gateway gw{GatewayConfig(dir)
                 .upstreams({{"ks", ks.url()}})
                 .refresh("every = \"10s\"\nmax_rate = \"10/s\"\n")};
  REQUIRE(gw.started());
  const std::string fpr = fixture("FRANK_FPR");
  REQUIRE(gw.get(index_target(fpr)).status == 200);  // cached by one lookup
  REQUIRE(gw.get(get_target(fixture("ALICE_FPR"))).status == 200);
  CHECK(metric(gw, "hkp_gateway_refresh_total{outcome=\"revoked\"}") == 0);

  // Frank revokes his key at the keyserver, not through the gateway.
  REQUIRE(ks.publish(read_file(data_dir() + "/frank-revocation.asc")) == false);  // bare: refused
  REQUIRE(ks.publish(read_file(data_dir() + "/frank.asc")));
  const auto published = std::chrono::steady_clock::now();
  const int lookups_before = ks.lookups();

  // Nobody asks the gateway: the refresher does, within the period (10 s, less a tenth).
  CHECK(gw.process().wait_for("event=key_refreshed fingerprint=" + fpr + " outcome=revoked",
                              std::chrono::seconds(40)));
  const auto took = std::chrono::duration<double>(std::chrono::steady_clock::now() - published);
  INFO("revocation in the cache " << took.count() << " s after it was published upstream");
  CHECK(metric(gw, "hkp_gateway_refresh_total{outcome=\"revoked\"}") == 1);
  CHECK(ks.lookups() > lookups_before);  // the refresher's own requests

  // The next lookup is answered from the cache, revoked.
  const int lookups_after = ks.lookups();
  const auto r = gw.get(index_target(fpr));
  CHECK(pub_line(r).ends_with(":r"));
  CHECK(r.header("x-hkp-cache") == "hit");
  // Alice's unchanged copy was confirmed too, and the oldest copy is younger than two periods.
  CHECK(eventually([&] { return metric(gw, "hkp_gateway_refresh_total{outcome=\"unchanged\"}") >= 1; },
                   std::chrono::seconds(30)));
  const double oldest = metric(gw, "hkp_gateway_refresh_oldest_seconds");
  CHECK(oldest >= 0);
  CHECK(oldest < 20);
  CHECK(ks.lookups() >= lookups_after);
}

TEST_CASE("POST /admin/refresh refreshes one key now, or every key",
          "[integration][refresh][admin]") {
  TempDir dir;
  write_file(dir / "token", kToken + "\n");
  TestKeyserver ks(dir, "ks", "server", "normal", {"frank-unrevoked.asc"});
  Gateway gw{GatewayConfig(dir)
                 .upstreams({{"ks", ks.url()}})
                 .admin("token_file = \"" + dir / "token" + "\"\n")};
  REQUIRE(gw.started());  // the default period (1 h): nothing is due during this test
  const std::string fpr = fixture("FRANK_FPR");
  REQUIRE(gw.get(index_target(fpr)).status == 200);

  auto one = admin_post(gw, "/admin/refresh/" + fpr);
  CHECK(one.status == 200);
  CHECK_THAT(one.body, Contains("\"outcome\":\"unchanged\""));

  REQUIRE(ks.publish(read_file(data_dir() + "/frank.asc")));
  one = admin_post(gw, "/admin/refresh/" + fpr);
  CHECK(one.status == 200);
  CHECK_THAT(one.body, Contains("\"outcome\":\"revoked\""));
  CHECK(pub_line(gw.get(index_target(fpr))).ends_with(":r"));

  CHECK(admin_post(gw, "/admin/refresh/" + fixture("ALICE_FPR")).status == 404);  // not cached
  CHECK(admin_post(gw, "/admin/refresh/0xNOTHEX").status == 400);
  CHECK(http_request(gw.admin(), "POST", "/admin/refresh").status == 401);  // token needed

  // Everything cached before the request is refreshed (a key fetched in that very second
  // counts as fresh).
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  const int before = ks.lookups();
  const auto all = admin_post(gw, "/admin/refresh");
  CHECK(all.status == 202);
  CHECK_THAT(all.body, Contains("\"keys\":1"));
  CHECK(eventually([&] { return ks.lookups() > before; }, std::chrono::seconds(20)));
}

TEST_CASE("the refresher honours an upstream's Retry-After and waits while none is healthy",
          "[integration][refresh]") {
  TempDir dir;
  TestKeyserver ks(dir, "ks", "server", "normal", {"alice.asc", "bob.asc"});
  Gateway gw{GatewayConfig(dir)
                 .upstreams({{"ks", ks.url()}})
                 .refresh("every = \"10s\"\nmax_rate = \"10/s\"\n")};
  REQUIRE(gw.started());
  REQUIRE(gw.get(get_target(fixture("ALICE_FPR"))).status == 200);
  REQUIRE(gw.get(get_target(fixture("BOB_FPR"))).status == 200);
  ks.set_mode("busy");
  // The first refresh meets the 429 and its Retry-After: 30; the refresher waits that long
  // (at most the period, 10 s) instead of asking again for the other key at once.
  REQUIRE(gw.process().wait_for("event=refresh_paused reason=\"an upstream sent Retry-After\"",
                                std::chrono::seconds(30)));
  const int at_pause = ks.lookups();
  std::this_thread::sleep_for(std::chrono::seconds(3));
  CHECK(ks.lookups() == at_pause);
  CHECK(metric(gw, "hkp_gateway_refresh_total{outcome=\"failed\"}") >= 1);
}

TEST_CASE("a restart resumes the schedule: nothing is refreshed before it is due",
          "[integration][refresh]") {
  TempDir dir;
  TestKeyserver ks(dir, "ks");
  const std::string refresh = "\n[refresh]\nevery = \"1h\"\nmax_rate = \"100/s\"\n";
  {
    Gateway gw{GatewayConfig(dir).upstreams({{"ks", ks.url()}}).upstreams_table(refresh)};
    REQUIRE(gw.started());
    for (const char* k : {"ALICE_FPR", "BOB_FPR", "CAROL_FPR", "DAVE_FPR", "ERIN_FPR"}) {
      REQUIRE(gw.get(get_target(fixture(k))).status == 200);
    }
  }
  const int before = ks.lookups();
  Gateway again{GatewayConfig(dir).upstreams({{"ks", ks.url()}}).upstreams_table(refresh)};
  REQUIRE(again.started());
  std::this_thread::sleep_for(std::chrono::seconds(2));  // several of the refresher's steps
  CHECK(ks.lookups() == before);
  CHECK(cached_keys(again) == 5);
}

TEST_CASE("a reload turns the refresher on, and it then brings the revocation",
          "[integration][refresh]") {
  TempDir dir;
  TestKeyserver ks(dir, "ks", "server", "normal", {"frank-unrevoked.asc"});
  Gateway gw{GatewayConfig(dir)
                 .upstreams({{"ks", ks.url()}})
                 .refresh("every = \"10s\"\nmax_rate = \"0\"\n")};
  REQUIRE(gw.started());
  const std::string fpr = fixture("FRANK_FPR");
  REQUIRE(gw.get(index_target(fpr)).status == 200);
  REQUIRE(ks.publish(read_file(data_dir() + "/frank.asc")));
  const int lookups = ks.lookups();
  // Off: past its period (10 s) the key is not asked for again.
  std::this_thread::sleep_for(std::chrono::seconds(11));
  CHECK(ks.lookups() == lookups);
  CHECK(metric(gw, "hkp_gateway_refresh_period_seconds") == 0);

  std::string toml = read_file(gw.config_path());
  const auto at = toml.find("max_rate = \"0\"");
  REQUIRE(at != std::string::npos);
  toml.replace(at, 14, "max_rate = \"10/s\"");
  write_file(gw.config_path(), toml);
  gw.process().signal(SIGHUP);
  CHECK(gw.process().wait_for("event=config_reload result=success"));
  CHECK(gw.process().wait_for("event=key_refreshed fingerprint=" + fpr + " outcome=revoked",
                              std::chrono::seconds(20)));
  CHECK(metric(gw, "hkp_gateway_refresh_period_seconds") == 10);
  CHECK(pub_line(gw.get(index_target(fpr))).ends_with(":r"));
}

TEST_CASE("an upstream's prefix log brings a changed key ahead of its period",
          "[integration][refresh]") {
  TempDir dir;
  TestKeyserver ks(dir, "ks", "server", "normal", {"frank-unrevoked.asc", "alice.asc"});
  ks.serve_prefix_log(true);
  // A ten-minute period: nothing comes due by age in this test; the log is read every 10 s.
  Gateway gw{GatewayConfig(dir)
                 .upstreams({{"ks", ks.url()}})
                 .refresh("every = \"10m\"\nmax_rate = \"10/s\"\n")};
  REQUIRE(gw.started());
  const std::string fpr = fixture("FRANK_FPR");
  REQUIRE(gw.get(index_target(fpr)).status == 200);
  REQUIRE(gw.get(get_target(fixture("ALICE_FPR"))).status == 200);
  const int gets_before = ks.count("gets");

  REQUIRE(ks.publish(read_file(data_dir() + "/frank.asc")));  // the log now lists frank's prefix
  CHECK(gw.process().wait_for("event=prefix_log_read upstream=ks", std::chrono::seconds(30)));
  CHECK(gw.process().wait_for("event=key_refreshed fingerprint=" + fpr + " outcome=revoked",
                              std::chrono::seconds(30)));
  CHECK(pub_line(gw.get(index_target(fpr))).ends_with(":r"));
  // Only the changed key was asked for: alice, not in the log and not due, was not.
  CHECK(ks.count("gets") == gets_before + 1);
}

TEST_CASE("an upstream without a prefix log is asked once a day, refreshes go by age",
          "[integration][refresh]") {
  TempDir dir;
  TestKeyserver ks(dir, "ks", "server", "normal", {"alice.asc"});  // its log is off: 404
  Gateway gw{GatewayConfig(dir).upstreams({{"ks", ks.url()}}).refresh("every = \"10m\"\n")};
  REQUIRE(gw.started());
  CHECK(gw.process().wait_for("event=prefix_log_unavailable upstream=ks"));
  std::this_thread::sleep_for(std::chrono::seconds(2));
  CHECK(occurrences(gw.log(), "event=prefix_log_unavailable") == 1);
}
