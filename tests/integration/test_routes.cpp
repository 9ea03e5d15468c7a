// Per-upstream routes through the real binary: /u/<name>/pks/lookup and /u/<name>/vks/v1/... ask
// that upstream alone, through the shared cache; the home page lists them.
#include <catch2/catch.hpp>

#include "support/actors.hpp"

using namespace hkpgw;
using namespace hkpgw::test;
using Catch::Matchers::Contains;

TEST_CASE("a route asks its upstream alone, through the shared cache", "[integration][routes]") {
  TempDir dir;
  TestKeyserver a(dir, "ks-a", "server", "normal", {"bob.asc"});
  TestKeyserver b(dir, "ks-b", "server", "normal", {"carol.asc"});
  Gateway gw{GatewayConfig(dir)
                 .upstreams({{"a", a.url()}, {"b", b.url()}})  // a is the default
                 .tables("[web]\nshow_upstreams = true\n")};
  REQUIRE(gw.started());
  const std::string bob = fixture("BOB_FPR"), carol = fixture("CAROL_FPR");

  // Carol through b's route: b is asked, a is not (the default would have been asked first).
  const HttpResult via_b = gw.get("/u/b" + get_target(carol));
  REQUIRE(via_b.status == 200);
  CHECK(via_b.header("x-hkp-cache") == "miss");
  CHECK(b.count("gets") == 1);
  CHECK(a.count("gets") == 0);
  // Cached now: a's route serves it from the cache without asking anyone.
  CHECK(gw.get("/u/a" + get_target(carol)).header("x-hkp-cache") == "hit");
  CHECK(gw.get(get_target(carol)).header("x-hkp-cache") == "hit");
  CHECK(a.count("gets") + b.count("gets") == 1);

  // Bob through b's route: b has none, a (which has it) is not asked: 404.
  const HttpResult bob_via_b = gw.get("/u/b/vks/v1/by-fingerprint/" + bob);
  CHECK(bob_via_b.status == 404);
  CHECK(a.count("gets") == 0);
  // One upstream's "not found" is not remembered for all: the plain lookup asks again, and a
  // answers.
  const HttpResult bob_plain = gw.get(get_target(bob));
  CHECK(bob_plain.status == 200);
  CHECK(a.count("gets") == 1);

  // Index listings go the same way.
  const HttpResult listing = gw.get("/u/a" + index_target(bob));
  CHECK(listing.status == 200);
  CHECK_THAT(listing.body, Contains(bob));

  // Unknown names and paths, and the home page's list.
  const HttpResult unknown = gw.get("/u/nosuch" + get_target(bob));
  CHECK(unknown.status == 404);
  CHECK_THAT(unknown.body, Contains("no upstream named \"nosuch\""));
  const HttpResult long_name = gw.get("/u/" + std::string(6000, 'n') + get_target(bob));
  CHECK(long_name.status == 404);
  CHECK(long_name.body.size() < 200);  // the name is echoed cut short
  CHECK(gw.get("/u/a/pks/nothing").status == 404);
  CHECK(gw.get("/u/").status == 404);
  CHECK(http_request(gw.address(), "POST", "/u/a/pks/add", "keytext=x",
                     {"Content-Type: application/x-www-form-urlencoded"})
            .status == 405);
  const HttpResult help = gw.get("/help");  // [web] show_upstreams = true
  CHECK_THAT(help.body, Contains("<code>/u/a/pks/lookup</code>"));
  CHECK_THAT(help.body, Contains("<code>/u/b/vks/v1/</code>"));
  CHECK_THAT(help.body, Contains("<code>" + a.url() + "</code>"));

  const std::string m = http_get(gw.admin(), "/metrics").body;
  CHECK_THAT(m, Contains("hkp_gateway_requests_total{front=\"vks\",op=\"get\",status=\"404\"} 1"));
}

TEST_CASE("a route to an unhealthy upstream still asks it, briefly", "[integration][routes]") {
  TempDir dir;
  TestKeyserver a(dir, "ks-a", "server", "normal", {"bob.asc"});
  TestKeyserver b(dir, "ks-b", "server", "fail", {"carol.asc"});
  Gateway gw{GatewayConfig(dir)
                 .upstreams({{"a", a.url()}, {"b", b.url()}})
                 .upstreams_table("unhealthy_threshold = 1\n")};
  REQUIRE(gw.started());
  // b fails: the route answers 503 (never 502), and the default is not asked in its place.
  const HttpResult r = gw.get("/u/b" + get_target(fixture("CAROL_FPR")));
  CHECK(r.status == 503);
  CHECK(a.count("gets") == 0);
  b.set_mode("normal");
  const HttpResult again = gw.get("/u/b" + get_target(fixture("CAROL_FPR")));
  CHECK(again.status == 200);
}
