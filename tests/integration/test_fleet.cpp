// The upstream fleet against several real-HTTPS test keyservers: order and failover, health from
// probes and from live failures, panic mode, hedging, coalescing, merging copies across
// upstreams, stale-while-revalidate, the connection bound and TLS session resumption.
// Intervals are short (probes every 200 ms) so nothing sleeps long; waits poll with a bound.
#include <catch2/catch.hpp>

#include <future>
#include <thread>

#include "support/actors.hpp"

using namespace hkpgw::test;
using Catch::Matchers::Contains;

namespace {

// A fingerprint no upstream has: the n-th of a family, so each test asks distinct misses.
std::string missing_fpr(int n) {
  std::string s = std::to_string(n);
  return std::string(40 - s.size(), 'A') + s;
}

const std::string kFastProbes =
    "probe_interval = \"200ms\"\nprobe_timeout = \"1s\"\nunhealthy_threshold = 2\n"
    "healthy_threshold = 2\n";
const std::string kNoProbes = "probe_interval = \"1h\"\nunhealthy_threshold = 3\n";

}  // namespace

TEST_CASE("a failing default is skipped once live failures mark it unhealthy", "[integration][fleet]") {
  TempDir dir;
  TestKeyserver dead(dir, "dead", "server", "fail");
  TestKeyserver backup(dir, "backup");
  // Probes every hour (one at start): only live requests can mark `dead` unhealthy.
  Gateway gw{GatewayConfig(dir)
                 .upstreams({{"dead", dead.url()}, {"backup", backup.url()}})
                 .upstreams_table(kNoProbes)};
  REQUIRE(gw.started());

  int n = 0;
  while (gw.log().find("upstream=dead state=unhealthy") == std::string::npos && n < 5) {
    const HttpResult r = gw.get(get_target(missing_fpr(n++)));
    CHECK(r.status == 404);  // `backup` answered: not found, not 503
  }
  REQUIRE_THAT(gw.log(), Contains("event=upstream_health upstream=dead state=unhealthy"));
  CHECK(n <= 3);  // the start-up probe plus live failures reach unhealthy_threshold = 3
  const int asked_before = dead.lookups();

  // From now on the dead default costs nothing: the backup answers alone.
  for (int i = 0; i < 3; ++i) {
    const HttpResult r = gw.get(get_target(i == 0 ? fixture("ALICE_FPR") : missing_fpr(100 + i)));
    CHECK(r.status == (i == 0 ? 200 : 404));
  }
  CHECK(dead.lookups() == asked_before);
  CHECK(backup.lookups() == n + 3);
  CHECK(count_of(gw.log(), "state=unhealthy") == 1);  // each transition logged once
}

TEST_CASE("probes notice a dead upstream without traffic and bring it back when it recovers",
          "[integration][fleet]") {
  TempDir dir;
  TestKeyserver first(dir, "first");
  TestKeyserver second(dir, "second");
  Gateway gw{GatewayConfig(dir)
                 .upstreams({{"first", first.url()}, {"second", second.url()}})
                 .upstreams_table(kFastProbes)};
  REQUIRE(gw.started());
  REQUIRE(eventually([&] { return first.count("probes") >= 1; }));
  CHECK(http_get(gw.admin(), "/readyz").status == 200);

  first.set_mode("fail");
  REQUIRE(gw.process().wait_for("upstream=first state=unhealthy"));
  CHECK(gw.get(get_target(fixture("BOB_FPR"))).status == 200);
  CHECK(first.lookups() == 0);  // skipped without being asked
  CHECK(second.lookups() == 1);
  const std::string status = gw.get("/pks/lookup?op=stats&options=mr").body;
  CHECK_THAT(status, Contains("{\"name\":\"first\",\"healthy\":false"));

  first.set_mode("normal");
  REQUIRE(gw.process().wait_for("upstream=first state=healthy"));
  CHECK_THAT(gw.log(), Contains("after=\"2 consecutive successes\""));
  CHECK(gw.get(get_target(fixture("CAROL_FPR"))).status == 200);
  CHECK(first.lookups() == 1);  // the default is used again
  CHECK(second.lookups() == 1);
  // Each transition went to the fleet's listener: logged (above) and counted.
  const std::string metrics = http_get(gw.admin(), "/metrics").body;
  CHECK_THAT(metrics, Contains("hkp_gateway_upstream_health_changes_total{state=\"unhealthy\",upstream=\"first\"} 1"));
  CHECK_THAT(metrics, Contains("hkp_gateway_upstream_health_changes_total{state=\"healthy\",upstream=\"first\"} 1"));
}

TEST_CASE("every upstream unhealthy: panic mode still asks them, in order", "[integration][fleet]") {
  TempDir dir;
  TestKeyserver only(dir, "only", "server", "fail");
  Gateway gw{GatewayConfig(dir).upstreams({{"only", only.url()}}).upstreams_table(kFastProbes)};
  REQUIRE(gw.started());
  REQUIRE(gw.process().wait_for("upstream=only state=unhealthy"));
  // Nothing healthy and nothing cached: not ready.
  const HttpResult ready = http_get(gw.admin(), "/readyz");
  CHECK(ready.status == 503);
  CHECK_THAT(ready.body, Contains("no upstream is healthy"));

  // A request still asks the unhealthy upstream (it might answer); this one fails: 503.
  const int before = only.lookups();
  const HttpResult failed = gw.get(get_target(fixture("ALICE_FPR")));
  CHECK(failed.status == 503);
  CHECK(only.lookups() == before + 1);
  CHECK_THAT(gw.log(), Contains("event=upstream_panic state=entered"));

  // That failed trial opens the panic circuit: misses are answered at once, unasked, until a
  // probe finds the upstream answering again (or Fleet::kPanicOpenFor passes).
  const HttpResult at_once = gw.get(get_target(fixture("BOB_FPR")));
  CHECK(at_once.status == 503);
  CHECK(only.lookups() == before + 1);
  only.set_mode("normal");
  CHECK(eventually([&] { return gw.get(get_target(fixture("ALICE_FPR"))).status == 200; }));
}

TEST_CASE("a dead upstream (connection refused) gives 503 at once, stale keys are still served",
          "[integration][fleet]") {
  TempDir dir;
  TestKeyserver ks(dir, "ks");
  Gateway gw{GatewayConfig(dir)
                 .upstreams({{"ks", ks.url()}})
                 .cache("fresh_for = \"0s\"\nstale_while_revalidate = \"0s\"\n")};
  REQUIRE(gw.started());
  REQUIRE(gw.get(get_target(fixture("ALICE_FPR"))).status == 200);
  ks.stop();
  const HttpResult stale = gw.get(get_target(fixture("ALICE_FPR")));
  CHECK(stale.status == 200);
  CHECK(stale.header("x-hkp-cache") == "stale");
  const HttpResult missing = gw.get(get_target(fixture("BOB_FPR")));
  CHECK(missing.status == 503);
  CHECK_THAT(missing.body, Contains("connect to localhost"));
}

TEST_CASE("gpg --recv-keys succeeds while the default upstream is dead", "[integration][fleet]") {
  TempDir dir;
  TestKeyserver dead(dir, "dead");
  TestKeyserver alive(dir, "alive");
  dead.stop();
  Gateway gw{GatewayConfig(dir).upstreams({{"dead", dead.url()}, {"alive", alive.url()}})};
  REQUIRE(gw.started());
  Gpg gpg;
  const auto r = gpg({"--recv-keys", fixture("BOB_FPR")}, gw.hkp_url());
  CHECK(r.exit_code == 0);
  CHECK(gpg.fingerprints() == std::vector<std::string>{fixture("BOB_FPR")});
  CHECK(alive.lookups() == 1);
}

TEST_CASE("hedging: a slow default gets company, the faster answer wins", "[integration][fleet]") {
  TempDir dir;
  TestKeyserver slow(dir, "slow");
  TestKeyserver fast(dir, "fast");
  slow.set_mode("slow", 2000);
  Gateway gw{GatewayConfig(dir)
                 .upstreams({{"slow", slow.url()}, {"fast", fast.url()}})
                 .upstreams_table("hedge_after = \"200ms\"\nrequest_timeout = \"5s\"\n")};
  REQUIRE(gw.started());
  const HttpResult r = gw.get(get_target(fixture("ALICE_FPR")));
  CHECK(r.status == 200);
  // The slow one was asked first and would have answered (2 s is inside request_timeout): the
  // winner can only be `fast` because it was asked too, before `slow` answered.
  CHECK(slow.lookups() == 1);
  CHECK(fast.lookups() == 1);
  CHECK_THAT(gw.log(), Contains("event=upstream_hedge slow=slow also_asking=fast after_ms=200"));
  CHECK(gw.process().wait_for("cache=miss upstream=fast"));  // access lines come in batches
  // The loser was withdrawn, not counted as a failure of `slow`.
  CHECK_THAT(gw.log(), !Contains("upstream_failed upstream=slow"));
}

TEST_CASE("50 concurrent identical misses make one upstream request", "[integration][fleet]") {
  TempDir dir;
  TestKeyserver ks(dir, "ks");
  ks.set_mode("slow", 500);  // long enough for every request to arrive while the first waits
  Gateway gw{GatewayConfig(dir).upstreams({{"ks", ks.url()}})};
  REQUIRE(gw.started());
  const std::string fpr = fixture("ERIN_FPR");
  std::vector<std::future<HttpResult>> answers;
  for (int i = 0; i < 50; ++i) {
    answers.push_back(std::async(std::launch::async, [&] { return gw.get(get_target(fpr)); }));
  }
  int ok = 0;
  std::string body;
  for (auto& a : answers) {
    const HttpResult r = a.get();
    ok += r.status == 200;
    if (body.empty()) body = r.body;
    CHECK(r.body == body);
  }
  CHECK(ok == 50);
  CHECK(ks.count("gets") == 1);
}

TEST_CASE("a copy without user IDs is completed from another upstream", "[integration][fleet]") {
  TempDir dir;
  TestKeyserver stripped(dir, "stripped", "server", "normal", {"upstream-keys-nouids.asc"});
  TestKeyserver full(dir, "full");
  const std::string alice = fixture("ALICE_FPR");
  auto uid_lines = [&](const Gateway& gw) {
    return count_of(gw.get(index_target(alice)).body, "\nuid:");
  };

  SECTION("merge = first: the UID-less answer makes the gateway ask the next upstream") {
    Gateway gw{GatewayConfig(dir).upstreams({{"stripped", stripped.url()}, {"full", full.url()}})};
    REQUIRE(gw.started());
    CHECK(gw.get(get_target(alice)).status == 200);
    CHECK(stripped.count("gets") == 1);
    CHECK(full.count("gets") == 1);
    CHECK_THAT(gw.log(), Contains("event=upstream_key_without_uids upstream=stripped"));
    CHECK(uid_lines(gw) == 2);
    // A key the first upstream serves with its user IDs needs nobody else.
    CHECK(gw.get(get_target(fixture("BOB_FPR"))).status == 200);
    CHECK(full.count("gets") == 1);
  }
  SECTION("merge = all: every upstream is asked and the copies are merged") {
    Gateway gw{GatewayConfig(dir)
                   .upstreams({{"stripped", stripped.url()}, {"full", full.url()}})
                   .upstreams_table("merge = \"all\"\n")};
    REQUIRE(gw.started());
    CHECK(gw.get(get_target(alice)).status == 200);
    CHECK(stripped.count("gets") == 1);
    CHECK(full.count("gets") == 1);
    CHECK(uid_lines(gw) == 2);
    CHECK(gw.process().wait_for("upstream=stripped+full"));  // access lines come in batches
    // gpg accepts the merged key (it refuses keys without user IDs).
    Gpg gpg;
    CHECK(gpg({"--recv-keys", alice}, gw.hkp_url()).exit_code == 0);
    CHECK(gpg.fingerprints() == std::vector<std::string>{alice});
  }
  SECTION("alone, the UID-less copy is still served and cached") {
    Gateway gw{GatewayConfig(dir).upstreams({{"stripped", stripped.url()}})};
    REQUIRE(gw.started());
    CHECK(gw.get(get_target(alice)).status == 200);
    CHECK(uid_lines(gw) == 0);
  }
}

TEST_CASE("stale-while-revalidate serves at once and refreshes once in the background",
          "[integration][fleet]") {
  TempDir dir;
  TestKeyserver ks(dir, "ks");
  Gateway gw{GatewayConfig(dir)
                 .upstreams({{"ks", ks.url()}})
                 .cache("fresh_for = \"0s\"\nstale_while_revalidate = \"1h\"\n")};
  REQUIRE(gw.started());
  const std::string fpr = fixture("DAVE_FPR");
  CHECK(gw.get(get_target(fpr)).header("x-hkp-cache") == "miss");
  ks.set_mode("slow", 500);  // keeps the refresh in flight while more stale hits arrive
  for (int i = 0; i < 5; ++i) {
    const HttpResult r = gw.get(get_target(fpr));
    CHECK(r.status == 200);
    CHECK(r.header("x-hkp-cache") == "stale");
  }
  CHECK(eventually([&] { return gw.log().find("event=revalidated") != std::string::npos; }));
  CHECK(ks.count("gets") == 2);  // the miss, then exactly one background refresh
  CHECK_THAT(gw.log(), Contains("event=revalidated kind=fingerprint in=background upstream=ks"));
}

TEST_CASE("past stale_while_revalidate the key is re-fetched before answering",
          "[integration][fleet]") {
  TempDir dir;
  TestKeyserver ks(dir, "ks");
  Gateway gw{GatewayConfig(dir)
                 .upstreams({{"ks", ks.url()}})
                 .cache("fresh_for = \"0s\"\nstale_while_revalidate = \"0s\"\n")};
  REQUIRE(gw.started());
  const std::string fpr = fixture("BOB_FPR");
  CHECK(gw.get(get_target(fpr)).header("x-hkp-cache") == "miss");
  const HttpResult again = gw.get(get_target(fpr));
  CHECK(again.status == 200);
  CHECK(again.header("x-hkp-cache") == "revalidated");
  CHECK(again.header("age") == "0");
  CHECK(ks.count("gets") == 2);
}

TEST_CASE("index searches: cached listings are revalidated, and with every upstream down the "
          "local key index answers",
          "[integration][fleet]") {
  TempDir dir;
  TestKeyserver ks(dir, "ks");
  Gateway gw{GatewayConfig(dir)
                 .upstreams({{"ks", ks.url()}})
                 .cache("fresh_for = \"0s\"\nstale_while_revalidate = \"0s\"\n")};
  REQUIRE(gw.started());
  // Alice's key is cached by a fingerprint lookup; no listing for "alice" is.
  REQUIRE(gw.get(get_target(fixture("ALICE_FPR"))).status == 200);
  ks.set_mode("fail");
  const HttpResult r = gw.get("/pks/lookup?op=index&options=mr&search=Alice");
  CHECK(r.status == 200);
  CHECK(r.header("x-hkp-cache") == "stale");
  CHECK_THAT(r.body, Contains("pub:" + fixture("ALICE_FPR")));
  CHECK(gw.get("/pks/lookup?op=index&options=mr&search=nobody-knows-this").status == 503);

  ks.set_mode("normal");
  const HttpResult first = gw.get("/pks/lookup?op=index&options=mr&search=bob");
  CHECK(first.header("x-hkp-cache") == "miss");
  const HttpResult second = gw.get("/pks/lookup?op=index&options=mr&search=bob");
  CHECK(second.header("x-hkp-cache") == "revalidated");
  CHECK(second.body == first.body);
}

TEST_CASE("connections per upstream stay within max_connections", "[integration][fleet]") {
  TempDir dir;
  TestKeyserver ks(dir, "ks");
  ks.set_mode("slow", 300);
  Gateway gw{GatewayConfig(dir)
                 .upstreams({{"ks", ks.url()}})
                 .upstreams_table("max_connections = 2\nrequest_timeout = \"8s\"\n")};
  REQUIRE(gw.started());
  std::vector<std::future<int>> answers;
  for (int i = 0; i < 8; ++i) {  // eight distinct misses: nothing to coalesce
    answers.push_back(std::async(std::launch::async,
                                 [&, i] { return gw.get(get_target(missing_fpr(i))).status; }));
  }
  for (auto& a : answers) CHECK(a.get() == 404);
  CHECK(ks.count("gets") == 8);
  CHECK(ks.count("max_concurrent") <= 2);
  CHECK(ks.count("max_concurrent") >= 1);
}

TEST_CASE("new connections resume the upstream's TLS session", "[integration][fleet]") {
  TempDir dir;
  TestKeyserver ks(dir, "ks");
  ks.set_mode("normal", 0, true);  // close after every answer: each request a new handshake
  Gateway gw{GatewayConfig(dir).upstreams({{"ks", ks.url()}}).upstreams_table(kNoProbes)};
  REQUIRE(gw.started());
  for (int i = 0; i < 4; ++i) CHECK(gw.get(get_target(missing_fpr(i))).status == 404);
  // The probe at start and the first lookups may race to the first full handshake; after that
  // every new connection resumes.
  CHECK(ks.count("resumed") >= 3);
  CHECK_THAT(gw.get("/pks/lookup?op=stats&options=mr").body, Contains("\"tls_resumptions\":"));
}

TEST_CASE("an upstream that resets connections is failed over like one that is down",
          "[integration][fleet]") {
  TempDir dir;
  TestKeyserver rst(dir, "rst", "server", "reset");
  TestKeyserver ok(dir, "ok");
  Gateway gw{GatewayConfig(dir)
                 .upstreams({{"rst", rst.url()}, {"ok", ok.url()}})
                 .upstreams_table(kNoProbes)};
  REQUIRE(gw.started());
  CHECK(gw.get(get_target(fixture("ALICE_FPR"))).status == 200);
  CHECK(rst.lookups() == 1);
  CHECK(ok.lookups() == 1);
  CHECK_THAT(gw.log(), Contains("upstream_failed upstream=rst outcome=connect_error"));
}

TEST_CASE("different versions of a key across upstreams and over time are merged, never lost",
          "[integration][fleet]") {
  TempDir dir;
  const std::string alice = fixture("ALICE_FPR");
  auto uid_lines = [&](const Gateway& gw) {
    return count_of(gw.get(index_target(alice)).body, "\nuid:");
  };
  SECTION("merge = all: v1 from one upstream, v2 (new subkey and user ID) from the other") {
    TestKeyserver old_copy(dir, "old", "server", "normal", {"alice.asc"});
    TestKeyserver new_copy(dir, "new", "server", "normal", {"alice-v2.asc"});
    Gateway gw{GatewayConfig(dir)
                   .upstreams({{"old", old_copy.url()}, {"new", new_copy.url()}})
                   .upstreams_table("merge = \"all\"\n")};
    REQUIRE(gw.started());
    const HttpResult r = gw.get(get_target(alice));
    CHECK(r.status == 200);
    CHECK(uid_lines(gw) == 3);
    Gpg gpg;
    REQUIRE(gpg({"--recv-keys", alice}, gw.hkp_url()).exit_code == 0);
    const auto listing = gpg({"--with-colons", "--list-keys", alice});
    CHECK(count_of(listing.out, "\nsub:") == 2);
  }
  SECTION("a cached v2 refreshed from an upstream still serving v1 keeps what v2 added") {
    TestKeyserver ks(dir, "ks", "server", "normal", {"alice-v2.asc"});
    TestKeyserver stale(dir, "stale", "server", "normal", {"alice.asc"});
    {
      Gateway gw{GatewayConfig(dir).upstreams({{"ks", ks.url()}})};
      REQUIRE(gw.started());
      REQUIRE(gw.get(get_target(alice)).status == 200);
      REQUIRE(uid_lines(gw) == 3);
    }
    // Same cache, now an upstream with the older copy; fresh_for 0 forces the re-fetch.
    Gateway gw{GatewayConfig(dir)
                   .upstreams({{"stale", stale.url()}})
                   .cache("fresh_for = \"0s\"\nstale_while_revalidate = \"0s\"\n")};
    REQUIRE(gw.started());
    const HttpResult r = gw.get(get_target(alice));
    CHECK(r.header("x-hkp-cache") == "revalidated");
    CHECK(stale.count("gets") == 1);
    CHECK(count_of(gw.get(index_target(alice)).body, "\nuid:") == 3);
  }
}
