// The HTTP surface of docs/contract.md as a client sees it, against the real binary and a
// real-HTTPS test keyserver: statuses, one-line reasons, content types, cache headers, counts.
#include <catch2/catch.hpp>
#include <chrono>
#include <sstream>
#include <thread>

#include "support/actors.hpp"

using namespace hkpgw::test;
using Catch::Matchers::Contains;
using Catch::Matchers::StartsWith;

namespace {

// A plain-text error body is exactly one line.
void check_one_line(const HttpResult& r) {
  REQUIRE_FALSE(r.body.empty());
  CHECK(r.body.back() == '\n');
  CHECK(r.body.find('\n') == r.body.size() - 1);
}

}  // namespace

TEST_CASE("bad requests get the documented status and one line of text", "[integration]") {
  TempDir dir;
  TestKeyserver ks(dir, "ks");
  Gateway gw{GatewayConfig(dir).upstreams({{"ks", ks.url()}})};
  REQUIRE(gw.started());

  auto [target, status, words] = GENERATE(table<std::string, int, std::string>({
      {"/pks/lookup?op=frobnicate&search=alice", 501, "op=frobnicate"},
      {"/pks/lookup?op=vindex-x&search=alice", 501, "not supported"},
      {"/pks/lookup?op=get", 400, "missing search"},
      {"/pks/lookup?op=get&search=", 400, "empty search"},
      {"/pks/lookup?search=alice", 400, "missing op"},
      {"/pks/lookup?op=get&search=0xNOTHEX", 400, "malformed key ID"},
      {"/pks/lookup?op=get&search=0xB8E106B6", 400, "32-bit key IDs"},
      {"/pks/lookup?op=get&search=0x0000000000000000000000000000000000000001", 404, "No data"},
      {"/no/such/path", 404, "no such path"},
  }));
  const HttpResult r = gw.get(target);
  CHECK(r.status == status);
  CHECK_THAT(r.body, Contains(words));
  CHECK_THAT(r.header("content-type"), StartsWith("text/plain"));
  check_one_line(r);
  CHECK(r.header("content-length") == std::to_string(r.body.size()));
  // Every answer of the HKP front, errors included, may be read by a web page (the HKP draft).
  CHECK(r.header("access-control-allow-origin") == "*");
}

TEST_CASE("oversized headers get 431 and oversized bodies 413", "[integration]") {
  TempDir dir;
  Gateway gw{
      GatewayConfig(dir).server("max_header_bytes = \"4KiB\"\nmax_body_bytes = \"64KiB\"\n")};
  REQUIRE(gw.started());
  const HttpResult big_header =
      http_request(gw.address(), "GET", "/", "", {"X-Padding: " + std::string(8000, 'a')});
  CHECK(big_header.status == 431);
  check_one_line(big_header);
  const HttpResult big_body =
      http_request(gw.address(), "POST", "/pks/add", "keytext=" + std::string(100000, 'A'));
  CHECK(big_body.status == 413);
  CHECK_THAT(big_body.body, Contains("65536"));
  check_one_line(big_body);
  // The process keeps serving.
  CHECK(gw.get("/").status == 200);
}

TEST_CASE("GET / is the search page and never shows an upstream's address", "[integration]") {
  TempDir dir;
  TestKeyserver ks(dir, "ks");
  Gateway gw{GatewayConfig(dir).upstreams({{"ks", ks.url()}})};
  REQUIRE(gw.started());
  const HttpResult home = gw.get("/");
  CHECK(home.status == 200);
  CHECK_THAT(home.header("content-type"), StartsWith("text/html"));
  CHECK_THAT(home.body, Contains("action=\"/search\""));
  CHECK(home.body.find(ks.url()) == std::string::npos);
  // /help's status says how many upstreams answer, not who they are, unless the operator says.
  const HttpResult help = gw.get("/help");
  CHECK_THAT(help.body, Contains("Public keyservers answering: 1 of 1"));
  CHECK(help.body.find(ks.url()) == std::string::npos);
  CHECK(help.body.find(">ks<") == std::string::npos);
  CHECK(http_request(gw.address(), "DELETE", "/pks/lookup?op=get&search=x").status == 405);
  const HttpResult stats = gw.get("/pks/lookup?op=stats");
  CHECK(stats.status == 200);
  CHECK_THAT(stats.body, Contains("keys: 0"));
}

TEST_CASE("op=get: a miss asks upstream once, then the cache answers", "[integration]") {
  TempDir dir;
  TestKeyserver ks(dir, "ks");
  Gateway gw{GatewayConfig(dir).upstreams({{"ks", ks.url()}})};
  REQUIRE(gw.started());
  const std::string fpr = fixture("ALICE_FPR");

  const HttpResult first = gw.get("/pks/lookup?op=get&options=mr&search=0x" + fpr);
  REQUIRE(first.status == 200);
  CHECK(first.header("content-type") == "application/pgp-keys");
  CHECK(first.header("x-hkp-cache") == "miss");
  CHECK_THAT(first.body, StartsWith("-----BEGIN PGP PUBLIC KEY BLOCK-----"));
  CHECK(first.header("transfer-encoding").empty());
  CHECK(ks.lookups() == 1);

  const HttpResult second = gw.get("/pks/lookup?op=get&options=mr&search=0x" + fpr);
  CHECK(second.status == 200);
  CHECK(second.header("x-hkp-cache") == "hit");
  CHECK(second.body == first.body);
  CHECK(ks.lookups() == 1);

  // Another identifier of the same key, in another spelling: still the cache.
  const std::string sub = fixture("ALICE_SUB_FPR");
  for (const auto& search : {fpr.substr(24), sub, "0x" + sub.substr(24), "0x" + fpr}) {
    const HttpResult r = gw.get("/pks/lookup?op=get&search=" + search);
    CHECK(r.status == 200);
    CHECK(r.header("x-hkp-cache") == "hit");
  }
  CHECK(ks.lookups() == 1);
}

TEST_CASE("machine-readable index by email, cached per normalised query", "[integration]") {
  TempDir dir;
  TestKeyserver ks(dir, "ks");
  Gateway gw{GatewayConfig(dir).upstreams({{"ks", ks.url()}})};
  REQUIRE(gw.started());

  const HttpResult r = gw.get("/pks/lookup?op=index&options=mr&search=alice%40example.org");
  REQUIRE(r.status == 200);
  CHECK_THAT(r.header("content-type"), StartsWith("text/plain"));
  CHECK_THAT(r.body, StartsWith("info:1:1\npub:" + fixture("ALICE_FPR") + ":22:"));
  CHECK_THAT(r.body, Contains("uid:Alice%20Example%20<alice@example.org>:"));
  CHECK_THAT(r.body, Contains("uid:Alice%20Work%3A%20Ops%20<Alice@Work.Example>:"));
  CHECK(ks.count("indexes") == 1);

  // The same search spelled differently is the same query: answered from the cache.
  const HttpResult again = gw.get("/pks/lookup?search=%3CALICE@Example.org%3E&options=mr&op=index");
  CHECK(again.status == 200);
  CHECK(again.header("x-hkp-cache") == "hit");
  CHECK(ks.count("indexes") == 1);

  // Text search and its HTML rendering.
  const HttpResult html = gw.get("/pks/lookup?op=index&search=Team+Rotation");
  CHECK(html.status == 200);
  CHECK_THAT(html.header("content-type"), StartsWith("text/html"));
  CHECK_THAT(html.body, Contains(fixture("TEAM1_FPR")));
  CHECK_THAT(html.body, Contains(fixture("TEAM2_FPR")));
}

TEST_CASE("index flags: revoked key, expired key, revoked user ID", "[integration]") {
  TempDir dir;
  TestKeyserver ks(dir, "ks");
  Gateway gw{GatewayConfig(dir).upstreams({{"ks", ks.url()}})};
  REQUIRE(gw.started());
  const auto pub_line = [&](const std::string& fpr) {
    const HttpResult r = gw.get("/pks/lookup?op=index&options=mr&search=0x" + fpr);
    if (r.status != 200) FAIL_CHECK("status " << r.status << " for " << fpr << "\n" << gw.log());
    const std::string body = r.body;
    const auto at = body.find("pub:");
    return at == std::string::npos ? body : body.substr(at, body.find('\n', at) - at);
  };
  CHECK_THAT(pub_line(fixture("CAROL_FPR")), Catch::Matchers::EndsWith(":r"));
  CHECK_THAT(pub_line(fixture("DAVE_FPR")), Catch::Matchers::EndsWith(":e"));
  CHECK_THAT(pub_line(fixture("ALICE_FPR")), Catch::Matchers::EndsWith(":"));
  const HttpResult erin_r = gw.get("/pks/lookup?op=index&options=mr&search=0x" + fixture("ERIN_FPR"));
  INFO("status " << erin_r.status << "\n" << gw.log());
  const std::string erin = erin_r.body;
  REQUIRE_THAT(erin, Contains("uid:Erin%20Old%20<erin@old.example>:"));
  const auto old_line = erin.substr(erin.find("uid:Erin%20Old"));
  CHECK_THAT(old_line.substr(0, old_line.find('\n')), Catch::Matchers::EndsWith(":r"));
}

TEST_CASE("op=get by email returns every key with the address", "[integration]") {
  TempDir dir;
  TestKeyserver ks(dir, "ks");
  Gateway gw{GatewayConfig(dir).upstreams({{"ks", ks.url()}})};
  REQUIRE(gw.started());
  const HttpResult r = gw.get("/pks/lookup?op=get&options=mr&search=team%40example.org&exact=on");
  REQUIRE(r.status == 200);
  const HttpResult idx = gw.get("/pks/lookup?op=index&options=mr&search=team@example.org");
  CHECK_THAT(idx.body, StartsWith("info:1:2\n"));
  // A raw '+' in an address is a plus (sq sends it unescaped).
  const HttpResult bob = gw.get("/pks/lookup?op=get&options=mr&search=bob+keys@example.org");
  CHECK(bob.status == 200);
  const int before = ks.lookups();
  CHECK(gw.get("/pks/lookup?op=get&search=bob%2Bkeys%40example.org").header("x-hkp-cache") == "hit");
  CHECK(ks.lookups() == before);
}

TEST_CASE("not found is remembered for negative_ttl", "[integration]") {
  TempDir dir;
  TestKeyserver ks(dir, "ks");
  Gateway gw{GatewayConfig(dir).upstreams({{"ks", ks.url()}})};
  REQUIRE(gw.started());
  const std::string missing = "/pks/lookup?op=get&search=0x" + std::string(40, 'C');
  CHECK(gw.get(missing).status == 404);
  const HttpResult again = gw.get(missing);
  CHECK(again.status == 404);
  CHECK(again.header("x-hkp-cache") == "negative");
  CHECK(ks.lookups() == 1);
}

TEST_CASE("short_key_ids = cache_only: answered from the cache, never asked upstream",
          "[integration]") {
  TempDir dir;
  TestKeyserver ks(dir, "ks");
  Gateway gw{
      GatewayConfig(dir).upstreams({{"ks", ks.url()}}).keys("short_key_ids = \"cache_only\"\n")};
  REQUIRE(gw.started());
  const std::string fpr = fixture("ALICE_FPR");
  REQUIRE(gw.get("/pks/lookup?op=get&search=0x" + fpr).status == 200);
  REQUIRE(ks.lookups() == 1);

  const HttpResult hit = gw.get("/pks/lookup?op=get&search=0x" + fpr.substr(32));
  CHECK(hit.status == 200);
  CHECK(hit.header("x-hkp-cache") == "hit");
  const HttpResult unknown = gw.get("/pks/lookup?op=get&search=0x" + fixture("BOB_FPR").substr(32));
  CHECK(unknown.status == 404);
  CHECK(unknown.header("x-hkp-cache") == "miss");
  CHECK(ks.lookups() == 1);
}

TEST_CASE("readiness and liveness probes on the admin listener", "[integration]") {
  TempDir dir;
  Gateway gw{GatewayConfig(dir)};
  REQUIRE(gw.started());
  CHECK(http_get(gw.admin(), "/healthz").status == 200);
  const HttpResult ready = http_get(gw.admin(), "/readyz");
  CHECK(ready.status == 200);
  CHECK(ready.body == "ready\n");
  CHECK(http_get(gw.admin(), "/metricz").status == 404);
}

TEST_CASE("HTTP/1.1 clients keep their connection across requests", "[integration]") {
  TempDir dir;
  TestKeyserver ks(dir, "ks");
  Gateway gw{GatewayConfig(dir).upstreams({{"ks", ks.url()}})};
  REQUIRE(gw.started());
  const std::string base = "http://" + gw.address();
  const std::string get = base + "/pks/lookup?op=get&search=0x" + fixture("ALICE_FPR");
  // curl speaks HTTP/1.1 and reuses the connection for the second URL when the server allows it.
  const auto r = run({"curl", "-sS", "-v", "-o", "/dev/null", "-o", "/dev/null", "-w",
                      "%{http_code}\\n", get, get});
  CHECK(r.exit_code == 0);
  CHECK(r.out == "200\n200\n");
  CHECK_THAT(r.err, Contains("Re-using existing connection"));
  CHECK_THAT(r.err, Contains("Content-Length:"));
  CHECK_THAT(r.err, !Contains("Transfer-Encoding: chunked"));
}

TEST_CASE("access_log_sample writes one access line in N, or none, and every 5xx answer",
          "[integration]") {
  for (const int sample : {0, 4}) {
    INFO("access_log_sample = " << sample);
    TempDir dir;
    TestKeyserver ks(dir, "ks", "server", "fail", {});
    Gateway gw{GatewayConfig(dir)
                   .upstreams({{"ks", ks.url()}})
                   .server("access_log_sample = " + std::to_string(sample) + "\n")};
    REQUIRE(gw.started());
    for (int i = 0; i < 8; ++i) CHECK(gw.get("/pks/lookup?op=stats").status == 200);
    // A lookup every upstream fails: a 5xx answer is always logged.
    CHECK(gw.get(get_target(fixture("ALICE_FPR"))).status >= 500);
    const std::size_t want = sample == 0 ? 1 : 8 / sample + 1;
    // Access lines come in batches: wait until the expected ones are out, then a little more.
    for (int i = 0; i < 50 && count_of(gw.log(), "event=request ") < want; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    CHECK(count_of(gw.log(), "event=request ") == want);
    std::size_t server_errors = 0;
    std::istringstream lines(gw.log());
    for (std::string line; std::getline(lines, line);) {
      server_errors += line.find("event=request ") != std::string::npos &&
                       line.find(" status=5") != std::string::npos;
    }
    CHECK(server_errors == 1);
  }
}

TEST_CASE("log_searches = false keeps searched addresses out of the access log", "[integration]") {
  TempDir dir;
  Gateway gw{GatewayConfig(dir).server("log_searches = false\n")};
  REQUIRE(gw.started());
  CHECK(gw.get("/pks/lookup?op=index&options=mr&search=someone%40private.example").status == 404);
  CHECK(gw.get("/pks/lookup?search=someone%40private.example&op=get").status == 404);
  CHECK(gw.process().wait_for("target=\"/pks/lookup?op=index&options=mr&search=<redacted>\""));  // access lines come in batches
  CHECK(gw.process().wait_for("target=\"/pks/lookup?search=<redacted>&op=get\""));  // access lines come in batches
  CHECK_THAT(gw.log(), !Contains("private.example"));
}

TEST_CASE("load balancers probe the HKP port: /healthz and /readyz, terse and never cached",
          "[integration]") {
  TempDir dir;
  TestKeyserver ks(dir, "ks");
  Gateway gw{GatewayConfig(dir)
                 .upstreams({{"ks", ks.url()}})
                 .limits("exempt = []\nkey_lookups = \"1/h\"\nkey_lookups_burst = 1\n")};
  REQUIRE(gw.started());
  const HttpResult live = gw.get("/healthz");
  CHECK(live.status == 200);
  CHECK(live.body == "ok\n");
  CHECK(live.header("cache-control") == "no-store");
  const HttpResult ready = gw.get("/readyz");
  CHECK(ready.status == 200);
  CHECK(ready.body == "ready\n");
  CHECK(http_request(gw.address(), "HEAD", "/readyz").status == 200);
  CHECK(http_request(gw.address(), "POST", "/readyz").status == 405);
  // Probes spend no client's budget: a client over its lookups still gets them.
  gw.get(get_target(fixture("ALICE_FPR")));
  REQUIRE(gw.get(get_target(fixture("BOB_FPR"))).status == 429);
  for (int i = 0; i < 5; ++i) CHECK(gw.get("/readyz").status == 200);
  // Counted apart from lookups, under their own front.
  const std::string m = http_get(gw.admin(), "/metrics").body;
  CHECK_THAT(m,
             Contains("hkp_gateway_requests_total{front=\"probe\",op=\"other\",status=\"200\"}"));
}

TEST_CASE(
    "/readyz on the HKP port says not ready when no upstream is healthy and nothing is cached",
    "[integration]") {
  TempDir dir;
  // An upstream nothing listens on: probes fail, and the cache is empty.
  const int port = free_loopback_port();
  Gateway gw{GatewayConfig(dir)
                 .upstreams({{"down", "https://127.0.0.1:" + std::to_string(port)}})
                 .upstreams_table("probe_interval = \"200ms\"\nunhealthy_threshold = 1\n")};
  REQUIRE(gw.started());
  REQUIRE(eventually([&] { return gw.get("/readyz").status == 503; }));
  const HttpResult r = gw.get("/readyz");
  CHECK(r.body == "not ready\n");  // the admin listener says why; the public port does not
  CHECK_THAT(http_get(gw.admin(), "/readyz").body, Contains("no upstream is healthy"));
  CHECK(gw.get("/healthz").status == 200);  // alive all the same
}
