// Tests that make safeguards fail loudly when someone breaks them: each one was written after a
// deliberate breakage (stale_if_error ignored, honor_client_no_cache ignored, upstream clients
// rebuilt on every reload) left the rest of the suite green.
#include <catch2/catch.hpp>

#include <csignal>
#include <thread>

#include "support/actors.hpp"

using namespace hkpgw::test;
using Catch::Matchers::Contains;

namespace {


void sighup_and_wait(Gateway& gw, int reloads_so_far) {
  gw.process().signal(SIGHUP);
  REQUIRE(eventually([&] {
    return occurrences(gw.log(), "event=config_reload result=success") ==
           static_cast<std::size_t>(reloads_so_far + 1);
  }));
}

}  // namespace

TEST_CASE("stale_if_error bounds how old a copy may be served when every upstream fails",
          "[integration][safeguards]") {
  TempDir dir;
  TestKeyserver ks(dir, "ks");
  Gateway gw{
      GatewayConfig(dir)
          .upstreams({{"ks", ks.url()}})
          .cache("fresh_for = \"0s\"\nstale_while_revalidate = \"0s\"\nstale_if_error = \"1s\"\n")};
  REQUIRE(gw.started());
  const std::string target = get_target(fixture("ALICE_FPR"));
  const std::string index = "/pks/lookup?op=index&options=mr&search=alice%40example.org";
  REQUIRE(gw.get(target).status == 200);
  REQUIRE(gw.get(index).status == 200);
  ks.set_mode("fail");
  // Within the window: the cached copy, marked stale.
  const HttpResult within = gw.get(target);
  CHECK(within.status == 200);
  CHECK(within.header("x-hkp-cache") == "stale");
  // Past it: too old to vouch for; the client hears that the upstreams failed.
  std::this_thread::sleep_for(std::chrono::milliseconds(2100));
  const HttpResult past = gw.get(target);
  CHECK(past.status == 503);
  CHECK_FALSE(past.header("retry-after").empty());
}

TEST_CASE("honor_client_no_cache: dirmngr's no-cache is ignored by default, obeyed when set",
          "[integration][safeguards]") {
  TempDir dir;
  TestKeyserver ks(dir, "ks");
  const std::string target = get_target(fixture("ALICE_FPR"));
  const std::vector<std::string> no_cache = {"Pragma: no-cache", "Cache-Control: no-cache"};
  {
    Gateway gw{GatewayConfig(dir).upstreams({{"ks", ks.url()}})};
    REQUIRE(gw.started());
    REQUIRE(gw.get(target).status == 200);
    const int before = ks.count("gets");
    const HttpResult r = http_request(gw.address(), "GET", target, "", no_cache);
    CHECK(r.status == 200);
    CHECK(r.header("x-hkp-cache") == "hit");
    CHECK(ks.count("gets") == before);
  }
  TempDir other;
  Gateway gw{
      GatewayConfig(other).upstreams({{"ks", ks.url()}}).server("honor_client_no_cache = true\n")};
  REQUIRE(gw.started());
  REQUIRE(gw.get(target).status == 200);
  const int before = ks.count("gets");
  const HttpResult r = http_request(gw.address(), "GET", target, "", no_cache);
  CHECK(r.status == 200);
  CHECK(r.header("x-hkp-cache") != "hit");
  CHECK(ks.count("gets") == before + 1);
  // Without the header the cached copy is served as usual.
  CHECK(gw.get(target).header("x-hkp-cache") == "hit");
}

TEST_CASE("a reload keeps each unchanged upstream's health and connections", "[integration][safeguards]") {
  TempDir dir;
  TestKeyserver down(dir, "down", "server", "fail");
  TestKeyserver up(dir, "up");
  Gateway gw{GatewayConfig(dir)
                 .upstreams({{"down", down.url()}, {"up", up.url()}})
                 .upstreams_table("probe_interval = \"1h\"\nunhealthy_threshold = 1\n")};
  REQUIRE(gw.started());
  // A request marks "down" unhealthy (it fails, threshold 1) and leaves a keep-alive connection
  // to "up" in its pool.
  REQUIRE(gw.get(get_target(fixture("ALICE_FPR"))).status == 200);
  REQUIRE(gw.process().wait_for("upstream=down state=unhealthy"));
  auto connections_to_up = [&] {
    const std::string stats = gw.get("/pks/lookup?op=stats&options=mr").body;
    const std::string marker = "{\"name\":\"up\",\"healthy\":true,\"connections\":";
    const auto at = stats.find(marker);
    return at == std::string::npos ? -1 : std::stoi(stats.substr(at + marker.size()));
  };
  const std::string before = gw.get("/pks/lookup?op=stats&options=mr").body;
  REQUIRE_THAT(before, Contains("{\"name\":\"down\",\"healthy\":false"));
  const int pooled = connections_to_up();
  REQUIRE(pooled >= 1);

  // A reload that changes nothing about the upstreams (a server key) carries both clients over:
  // "down" is still known to be unhealthy (probes are an hour away, so nothing could have
  // re-learnt it) and the idle connections to "up" are still in its pool (a new client starts
  // with none).
  std::string cfg = read_file(gw.config_path());
  cfg.replace(cfg.find("[server]\n"), 9, "[server]\nlog_searches = false\n");
  write_file(gw.config_path(), cfg);
  sighup_and_wait(gw, 0);
  const std::string after = gw.get("/pks/lookup?op=stats&options=mr").body;
  CHECK_THAT(after, Contains("{\"name\":\"down\",\"healthy\":false"));
  CHECK(connections_to_up() == pooled);
  const int down_gets = down.count("gets");
  REQUIRE(gw.get(get_target(fixture("BOB_FPR"))).status == 200);
  CHECK(down.count("gets") == down_gets);  // still skipped: not asked
  CHECK(connections_to_up() == pooled);    // served over a connection it already had
}

TEST_CASE("a remembered \"not found\" expires after negative_ttl", "[integration][safeguards]") {
  TempDir dir;
  TestKeyserver ks(dir, "ks");
  // 2 s, not 1: ages are whole seconds, and the second request may cross a second boundary.
  Gateway gw{GatewayConfig(dir).upstreams({{"ks", ks.url()}}).cache("negative_ttl = \"2s\"\n")};
  REQUIRE(gw.started());
  const std::string missing = get_target(std::string(40, 'D'));
  CHECK(gw.get(missing).status == 404);
  CHECK(gw.get(missing).header("x-hkp-cache") == "negative");
  CHECK(ks.lookups() == 1);
  std::this_thread::sleep_for(std::chrono::milliseconds(3100));  // past the TTL
  const HttpResult again = gw.get(missing);
  CHECK(again.status == 404);
  CHECK(again.header("x-hkp-cache") == "miss");
  CHECK(ks.lookups() == 2);  // asked again
}
