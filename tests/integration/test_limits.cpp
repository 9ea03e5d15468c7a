// Per-client rate limits through the real binary: the 429 and its Retry-After, the cached-hit
// path limited like every other (curl's keep-alive requests get reused answers), budgets apart,
// submissions, exemptions, and a reload changing the limits.
#include <catch2/catch.hpp>
#include <csignal>
#include <sstream>

#include "support/actors.hpp"

using namespace hkpgw;
using namespace hkpgw::test;
using Catch::Matchers::Contains;

namespace {

// Status codes of `n` GETs of `target` on one keep-alive HTTP/1.1 connection (curl reuses it).
std::vector<std::string> statuses(const Gateway& gw, const std::string& target, int n) {
  std::vector<std::string> argv = {"curl", "-s", "-w", "%{http_code}\\n"};
  for (int i = 0; i < n; ++i) {
    argv.insert(argv.end(), {"-o", "/dev/null", "http://" + gw.address() + target});
  }
  const RunResult r = run(argv);
  std::vector<std::string> out;
  std::istringstream in(r.out);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

}  // namespace

TEST_CASE("over its budget a client gets 429, on the cached-hit path too", "[integration][limits]") {
  TempDir dir;
  TestKeyserver ks(dir, "ks", "server", "normal", {"alice.asc", "bob.asc"});
  Gateway gw{GatewayConfig(dir)
                 .upstreams({{"ks", ks.url()}})
                 .limits("exempt = []\nkey_lookups = \"1/h\"\nkey_lookups_burst = 5\n"
                         "searches = \"1/h\"\nsearches_burst = 2\nsubmissions = "
                         "\"1/h\"\nsubmissions_burst = 1\n")};
  REQUIRE(gw.started());
  const std::string target = get_target(fixture("ALICE_FPR"));

  // Five on one connection: the first misses, the rest are hits (reused answers from the third
  // on); the sixth and seventh are over the budget although their answer is prepared.
  const auto codes = statuses(gw, target, 7);
  CHECK(codes == std::vector<std::string>{"200", "200", "200", "200", "200", "429", "429"});
  CHECK(ks.count("gets") == 1);
  const HttpResult limited = gw.get(target);
  CHECK(limited.status == 429);
  CHECK(limited.header("retry-after") == "3600");
  CHECK(limited.body == "Too many requests: this address is over its budget of key lookups "
                        "(1 per hour, bursts of 5); retry after 3600 s\n");
  // Every front's key lookups share the budget; searches have their own.
  CHECK(gw.get("/vks/v1/by-fingerprint/" + fixture("BOB_FPR")).status == 429);
  CHECK(gw.get("/pks/lookup?op=get&search=alice%40example.org").status == 200);
  CHECK(gw.get("/pks/v2/certs/by-identity/alice@example.org").status == 200);
  CHECK(gw.get("/pks/lookup?op=index&search=bob").status == 429);
  // However the parameter names are spelled: the parser decodes them, and so does the limiter.
  CHECK(gw.get("/pks/lookup?op=index&se%61rch=bob").status == 429);
  CHECK(gw.get("/pks/lookup?%6fp=index&search=bob").status == 429);
  // Submissions: one.
  const std::string erin = "keytext=" + percent_encode_all(read_file(data_dir() + "/erin.asc"));
  CHECK(post_add(gw, erin).status == 200);
  const HttpResult second = post_add(gw, erin);
  CHECK(second.status == 429);
  CHECK_THAT(second.body, Contains("budget of submissions"));
  // What spends no budget still works: the home page, stats, CORS preflights.
  CHECK(gw.get("/").status == 200);
  CHECK(gw.get("/pks/lookup?op=stats").status == 200);

  const std::string m = http_get(gw.admin(), "/metrics").body;
  CHECK_THAT(m, Contains("hkp_gateway_rate_limited_total{budget=\"key_lookups\"} 4"));
  CHECK_THAT(m, Contains("hkp_gateway_rate_limited_total{budget=\"searches\"} 3"));
  CHECK_THAT(m, Contains("hkp_gateway_rate_limited_total{budget=\"submissions\"} 1"));
  CHECK_THAT(m, Contains("hkp_gateway_rate_limit_clients 1"));
  // The hits before the limit were sent as reused answers: the path the limit must not skip.
  CHECK_THAT(m, !Contains("hkp_gateway_answers_reused_total 0\n"));
  CHECK_THAT(m, Contains("hkp_gateway_answers_reused_total "));
  CHECK_THAT(m, Contains("hkp_gateway_requests_total{front=\"hkp\",op=\"limited\",status=\"429\"}"));
  CHECK(gw.process().wait_for("op=limited"));

  // A reload that exempts loopback lets it on again at once.
  std::string toml = read_file(gw.config_path());
  toml.replace(toml.find("exempt = []"), 11, "exempt = [\"127.0.0.0/8\"]");
  write_file(gw.config_path(), toml);
  gw.process().signal(SIGHUP);
  REQUIRE(gw.process().wait_for("event=config_reload result=success"));
  CHECK(statuses(gw, target, 3) == std::vector<std::string>{"200", "200", "200"});
}

TEST_CASE("the default limits exempt loopback and leave others keys.openpgp.org's budgets",
          "[integration][limits]") {
  TempDir dir;
  Gateway gw{GatewayConfig(dir).upstreams_table("forward_adds = \"none\"\n")};
  REQUIRE(gw.started());
  // Loopback (the tests, a local HAProxy without PROXY protocol) is never limited.
  const auto codes = statuses(gw, "/pks/lookup?op=get&search=nobody%40example.org", 60);
  CHECK(std::count(codes.begin(), codes.end(), "404") == 60);
}
