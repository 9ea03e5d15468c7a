// The admin listener: Prometheus metrics that promtool accepts and that count what happened, and
// the token-protected admin API (reload, upstreams, probe, cache, key removal).
#include <catch2/catch.hpp>
#include <cmath>
#include <ctime>
#include <thread>

#include "support/actors.hpp"

using namespace hkpgw::test;
using Catch::Matchers::Contains;

namespace {

const std::string kToken = "test-token-0123456789abcdef";

HttpResult admin(const Gateway& gw, const std::string& method, const std::string& target,
                 const std::string& token = kToken) {
  std::vector<std::string> headers;
  if (!token.empty()) headers.push_back("Authorization: Bearer " + token);
  return http_request(gw.admin(), method, target, "", headers);
}

}  // namespace

TEST_CASE("/metrics passes promtool and counts requests, cache results and upstream outcomes",
          "[integration][admin]") {
  TempDir dir;
  TestKeyserver ks(dir, "ks");
  Gateway gw{GatewayConfig(dir).upstreams({{"ks", ks.url()}})};
  REQUIRE(gw.started());
  const std::string target = "/pks/lookup?op=get&search=0x" + fixture("ALICE_FPR");
  REQUIRE(gw.get(target).status == 200);  // miss
  REQUIRE(gw.get(target).status == 200);  // hit
  REQUIRE(gw.get("/pks/lookup?op=get&search=0x" + std::string(40, 'A')).status == 404);
  const HttpResult m = http_get(gw.admin(), "/metrics");
  REQUIRE(m.status == 200);
  CHECK_THAT(m.header("content-type"), Contains("text/plain; version=0.0.4"));
  write_file(dir / "metrics.txt", m.body);
  const auto check = run({"sh", "-c", "promtool check metrics < " + dir / "metrics.txt"});
  INFO(check.out << check.err);
  CHECK(check.exit_code == 0);
  CHECK_THAT(m.body, Contains("hkp_gateway_requests_total{front=\"hkp\",op=\"get\",status=\"200\"} 2"));
  CHECK_THAT(m.body, Contains("hkp_gateway_requests_total{front=\"hkp\",op=\"get\",status=\"404\"} 1"));
  CHECK_THAT(m.body, Contains("hkp_gateway_cache_lookups_total{result=\"hit\"} 1"));
  CHECK_THAT(m.body, Contains("hkp_gateway_cache_lookups_total{result=\"miss\"} 2"));
  CHECK_THAT(m.body, Contains("hkp_gateway_upstream_requests_total{outcome=\"ok\",upstream=\"ks\"} 1"));
  CHECK_THAT(m.body, Contains("hkp_gateway_upstream_requests_total{outcome=\"not_found\",upstream=\"ks\"} 1"));
  CHECK_THAT(m.body, Contains("hkp_gateway_upstream_healthy{upstream=\"ks\"} 1"));
  CHECK_THAT(m.body, Contains("hkp_gateway_cache_keys 1"));
  CHECK_THAT(m.body, Contains("hkp_gateway_build_info{version=\"" HKPGW_VERSION "\"} 1"));
  CHECK_THAT(m.body, Contains("hkp_gateway_request_duration_seconds_bucket{op=\"get\""));
  CHECK_THAT(m.body, Contains("hkp_gateway_config_last_reload_success_timestamp_seconds"));
  // Present from the first scrape, at zero: a rate or ratio over them is never missing.
  CHECK_THAT(
      m.body,
      Contains("hkp_gateway_upstream_requests_total{outcome=\"timeout\",upstream=\"ks\"} 0"));
  CHECK_THAT(
      m.body,
      Contains("hkp_gateway_upstream_health_changes_total{state=\"unhealthy\",upstream=\"ks\"} 0"));
  CHECK_THAT(m.body, Contains("hkp_gateway_cache_write_failures_total 0"));
  CHECK_THAT(m.body, Contains("hkp_gateway_cache_max_bytes 1073741824"));  // the 1GiB default
  // The process_* families every Prometheus client exports, from /proc.
  for (const char* family :
       {"process_cpu_seconds_total ", "process_resident_memory_bytes ", "process_open_fds ",
        "process_max_fds ", "process_virtual_memory_bytes ", "process_start_time_seconds "}) {
    INFO(family);
    CHECK_THAT(m.body, Contains(std::string("\n") + family));
  }
  const auto rss_at = m.body.find("\nprocess_resident_memory_bytes ");
  REQUIRE(rss_at != std::string::npos);
  const double rss = std::stod(m.body.substr(rss_at + 31));
  CHECK(rss > 1e6);   // a running gateway holds megabytes
  CHECK(rss < 1e10);  // bytes, not pages or kilobytes gone wrong
  const auto start_at = m.body.find("\nprocess_start_time_seconds ");
  const double started = std::stod(m.body.substr(start_at + 28));
  CHECK(std::abs(started - static_cast<double>(std::time(nullptr))) < 600);
}

TEST_CASE("the admin API needs its token, and is off without one", "[integration][admin]") {
  TempDir dir;
  SECTION("no token_file: 403") {
    Gateway gw{GatewayConfig(dir)};
    REQUIRE(gw.started());
    const HttpResult r = admin(gw, "GET", "/admin/upstreams");
    CHECK(r.status == 403);
    CHECK_THAT(r.body, Contains("set admin.token_file"));
  }
  SECTION("with a token_file: 401 without or with a wrong token") {
    write_file(dir / "token", kToken + "\n");
    Gateway gw{GatewayConfig(dir).admin("token_file = \"" + dir / "token" + "\"\n")};
    REQUIRE(gw.started());
    CHECK(admin(gw, "GET", "/admin/cache", "").status == 401);
    CHECK(admin(gw, "GET", "/admin/cache", kToken + "x").status == 401);
    const HttpResult ok = admin(gw, "GET", "/admin/cache");
    CHECK(ok.status == 200);
    CHECK_THAT(ok.body, Contains("\"keys\":0"));
    CHECK(admin(gw, "GET", "/admin/nothing").status == 404);
  }
  SECTION("a token shorter than 16 characters refuses to start") {
    write_file(dir / "token", "short\n");
    Gateway gw{GatewayConfig(dir).admin("token_file = \"" + dir / "token" + "\"\n")};
    CHECK_FALSE(gw.started());
    CHECK_THAT(gw.log(), Contains("holds no token of at least 16 characters"));
  }
}

TEST_CASE("admin API: upstreams, probe, cache, key removal and reload", "[integration][admin]") {
  TempDir dir;
  TestKeyserver ks(dir, "ks");
  write_file(dir / "token", kToken + "\n");
  Gateway gw{GatewayConfig(dir)
                 .upstreams({{"ks", ks.url()}})
                 .upstreams_table("probe_interval = \"1h\"\n")
                 .admin("token_file = \"" + dir / "token" + "\"\n")};
  REQUIRE(gw.started());

  const HttpResult ups = admin(gw, "GET", "/admin/upstreams");
  CHECK(ups.status == 200);
  CHECK_THAT(ups.body, Contains("{\"name\":\"ks\",\"url\":\"" + ks.url() + "\",\"default\":true,\"healthy\":true"));

  const int probes = ks.count("probes");
  CHECK(admin(gw, "POST", "/admin/upstreams/probe").status == 202);
  bool probed = false;
  for (int i = 0; i < 50 && !probed; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    probed = ks.count("probes") > probes;
  }
  CHECK(probed);

  const std::string fpr = fixture("BOB_FPR");
  REQUIRE(gw.get("/pks/lookup?op=get&search=0x" + fpr).status == 200);
  // /admin/cache and op=stats name the cache's figures the same way (one renderer).
  const std::string cache = admin(gw, "GET", "/admin/cache").body;
  const std::string stats = gw.get("/pks/lookup?op=stats&options=mr").body;
  for (const std::string name : {"keys", "identifiers", "queries", "cache_bytes", "cache_file_bytes",
                                 "cache_max_bytes", "evicted", "second_chances", "forward_queue"}) {
    INFO(name);
    CHECK_THAT(cache, Contains("\"" + name + "\":"));
    CHECK_THAT(stats, Contains("\"" + name + "\":"));
  }
  CHECK_THAT(cache, Contains("\"keys\":1,"));
  CHECK_THAT(stats, Contains("\"keys\":1,"));
  CHECK(admin(gw, "DELETE", "/admin/keys/" + fpr).status == 200);
  CHECK(admin(gw, "DELETE", "/admin/keys/" + fpr).status == 404);
  CHECK(admin(gw, "DELETE", "/admin/keys/nonsense").status == 400);
  CHECK(gw.get("/pks/lookup?op=get&search=0x" + fpr).header("x-hkp-cache") == "miss");

  // Reload: a broken file is refused with its problems, the running config kept.
  const std::string good = read_file(gw.config_path());
  write_file(gw.config_path(), good + "\n[keys]\nshort_key_ids = \"sometimes\"\n");
  const HttpResult bad = admin(gw, "POST", "/admin/reload");
  CHECK(bad.status == 422);
  CHECK_THAT(bad.body, Contains("keys.short_key_ids"));
  write_file(gw.config_path(), good);
  const HttpResult fine = admin(gw, "POST", "/admin/reload");
  CHECK(fine.status == 200);
  CHECK_THAT(fine.body, Contains("\"result\":\"success\""));
  const std::string m = http_get(gw.admin(), "/metrics").body;
  CHECK_THAT(m, Contains("hkp_gateway_config_reloads_total{result=\"failure\"} 1"));
  CHECK_THAT(m, Contains("hkp_gateway_config_reloads_total{result=\"success\"} 1"));

  // The token is read again on reload: rotating it needs no restart.
  const std::string rotated = "rotated-token-fedcba9876543210";
  write_file(dir / "token", rotated + "\n");
  CHECK(admin(gw, "POST", "/admin/reload").status == 200);
  CHECK(admin(gw, "GET", "/admin/cache").status == 401);
  CHECK(admin(gw, "GET", "/admin/cache", rotated).status == 200);
}
