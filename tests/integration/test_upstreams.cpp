// Upstream trust and failure handling: HTTPS only, certificates verified, wrong keys never
// cached, hanging or failing upstreams given up in time, the cache serving when they all fail.
#include <catch2/catch.hpp>

#include <csignal>

#include "support/actors.hpp"

using namespace hkpgw::test;
using Catch::Matchers::Contains;

namespace {


}  // namespace

TEST_CASE("an http:// upstream is refused at start and by --check-config", "[integration]") {
  TempDir dir;
  Gateway gw{GatewayConfig(dir).upstreams({{"plain", "http://localhost:11371"}})};
  CHECK_FALSE(gw.started());
  CHECK(gw.process().wait() == 1);
  CHECK_THAT(gw.log(), Contains("upstream \"plain\""));
  CHECK_THAT(gw.log(), Contains("HTTPS only"));
  const auto check = run({HKPGW_BINARY, "--check-config", gw.config_path()});
  CHECK(check.exit_code == 1);
  CHECK_THAT(check.err, Contains("upstream[0].url"));
}

TEST_CASE("a config file without [[upstream]] says it asks the public keyservers",
          "[integration][config]") {
  TempDir dir;
  write_file(dir / "none.toml", "[cache]\npath = \"" + dir / "cache" + "\"\n");
  const auto check = run({HKPGW_BINARY, "--check-config", dir / "none.toml"});
  CHECK(check.exit_code == 0);
  CHECK_THAT(check.err, Contains("no [[upstream]] table"));
  CHECK_THAT(check.err, Contains("https://keys.openpgp.org"));
  CHECK_THAT(check.err, Contains("upstream = []"));
  // Saying so is enough: an explicit empty list is quiet.
  write_file(dir / "empty.toml", "upstream = []\n[cache]\npath = \"" + dir / "cache" + "\"\n");
  const auto quiet = run({HKPGW_BINARY, "--check-config", dir / "empty.toml"});
  CHECK(quiet.exit_code == 0);
  CHECK(quiet.err.empty());
}

TEST_CASE("a certifier whose key the certifier file lacks stops --check-config and the start",
          "[integration][config]") {
  TempDir dir;
  const std::string toml = "upstream = []\n[cache]\npath = \"" + dir / "cache" + "\"\n[keys]\n" +
                           "certifiers = [\"" + fixture("ORGCA_FPR") + "\"]\ncertifier_keys = \"";
  write_file(dir / "wrong.toml", toml + data_dir() + "/mallory.asc\"\n");
  const auto check = run({HKPGW_BINARY, "--check-config", dir / "wrong.toml"});
  CHECK(check.exit_code == 1);
  CHECK_THAT(check.err, Contains("wrong.toml: keys.certifiers[0]: " + fixture("ORGCA_FPR") +
                                 " is not among the keys of"));
  const auto start = run({HKPGW_BINARY, "--config", dir / "wrong.toml"});
  CHECK(start.exit_code == 1);
  CHECK_THAT(start.err, Contains("not started: the config has problems"));
  write_file(dir / "right.toml", toml + data_dir() + "/orgca.asc\"\n");
  CHECK(run({HKPGW_BINARY, "--check-config", dir / "right.toml"}).exit_code == 0);
}

TEST_CASE("an upstream whose certificate we cannot verify is never used", "[integration]") {
  TempDir dir;
  auto cert = GENERATE(std::string("rogue"), std::string("wrongname"));
  TestKeyserver bad(dir, "bad", cert);
  TestKeyserver good(dir, "good");
  Gateway gw{GatewayConfig(dir).upstreams({{"bad", bad.url()}, {"good", good.url()}})};
  REQUIRE(gw.started());
  const HttpResult r = gw.get(get_target(fixture("ALICE_FPR")));
  CHECK(r.status == 200);
  CHECK(bad.lookups() == 0);   // the handshake failed before any request was sent
  CHECK(good.lookups() == 1);
  CHECK_THAT(gw.log(), Contains("outcome=tls_error"));
}

TEST_CASE("a wrong key from an upstream is never cached or served", "[integration]") {
  TempDir dir;
  TestKeyserver liar(dir, "liar", "server", "wrongkey");
  SECTION("alone: the client gets 404 and nothing is cached") {
    Gateway gw{GatewayConfig(dir).upstreams({{"liar", liar.url()}})};
    REQUIRE(gw.started());
    CHECK(gw.get(get_target(fixture("ALICE_FPR"))).status == 404);
    CHECK(cached_keys(gw) == 0);
    CHECK_THAT(gw.log(), Contains("event=upstream_key_mismatch upstream=liar"));
  }
  SECTION("followed by an honest upstream: its answer is served") {
    TestKeyserver honest(dir, "honest");
    Gateway gw{GatewayConfig(dir).upstreams({{"liar", liar.url()}, {"honest", honest.url()}})};
    REQUIRE(gw.started());
    const HttpResult r = gw.get(get_target(fixture("ALICE_FPR")));
    CHECK(r.status == 200);
    CHECK(cached_keys(gw) == 1);
    CHECK(liar.lookups() == 1);
    CHECK(honest.lookups() == 1);
    CHECK(gw.process().wait_for("upstream=honest"));  // access lines come in batches
  }
}

TEST_CASE("a hanging upstream is given up after request_timeout", "[integration]") {
  TempDir dir;
  TestKeyserver hung(dir, "hung", "server", "hang");
  SECTION("the next upstream answers") {
    TestKeyserver ok(dir, "ok");
    Gateway gw{GatewayConfig(dir)
                   .upstreams({{"hung", hung.url()}, {"ok", ok.url()}})
                   .upstreams_table("request_timeout = \"1s\"\n")};
    REQUIRE(gw.started());
    CHECK(gw.get(get_target(fixture("ALICE_FPR"))).status == 200);
    CHECK(ok.lookups() == 1);
    CHECK_THAT(gw.log(), Contains("outcome=timeout"));
  }
  SECTION("alone: 504 with one line") {
    Gateway gw{GatewayConfig(dir)
                   .upstreams({{"hung", hung.url()}})
                   .upstreams_table("request_timeout = \"1s\"\n")};
    REQUIRE(gw.started());
    const HttpResult r = gw.get(get_target(fixture("ALICE_FPR")));
    CHECK(r.status == 504);
    CHECK_THAT(r.body, Contains("Timeout: no upstream answered in time"));
  }
}

TEST_CASE("failing upstreams give 503, never 502, and the cache serves what it has",
          "[integration]") {
  TempDir dir;
  TestKeyserver ks(dir, "ks");
  Gateway gw{GatewayConfig(dir).upstreams({{"ks", ks.url()}}).cache("fresh_for = \"0s\"\n")};
  REQUIRE(gw.started());
  const std::string fpr = fixture("ALICE_FPR");
  REQUIRE(gw.get(get_target(fpr)).status == 200);

  ks.set_mode("fail");
  const HttpResult stale = gw.get(get_target(fpr));
  CHECK(stale.status == 200);
  CHECK(stale.header("x-hkp-cache") == "stale");

  const HttpResult missing = gw.get(get_target(fixture("BOB_FPR")));
  CHECK(missing.status == 503);
  CHECK_THAT(missing.body, Contains("HTTP 500"));
  CHECK(missing.body.find('\n') == missing.body.size() - 1);
}

TEST_CASE("SIGTERM stops the gateway cleanly with exit 0", "[integration]") {
  TempDir dir;
  Gateway gw{GatewayConfig(dir)};
  REQUIRE(gw.started());
  gw.process().signal(SIGTERM);
  CHECK(gw.process().wait() == 0);
  CHECK_THAT(gw.log(), Contains("event=stopped"));
}

TEST_CASE("upstreams.resolve pins an upstream's address, and its certificate is still checked by name",
          "[integration]") {
  TempDir dir;
  TestKeyserver ks(dir, "ks", "server", "normal", {"bob.asc"});
  const std::string port = ks.url().substr(ks.url().rfind(':') + 1);
  const std::string bob = fixture("BOB_FPR");
  {  // keys.test.example is in the server certificate; no DNS is asked (it would not resolve)
    Gateway gw{GatewayConfig(dir)
                   .upstreams({{"pinned", "https://keys.test.example:" + port}})
                   .upstreams_table("resolve = [\"keys.test.example:" + port + ":127.0.0.1\"]\n")};
    REQUIRE(gw.started());
    const HttpResult r = gw.get(get_target(bob));
    INFO(r.body << gw.log());
    CHECK(r.status == 200);
    CHECK(ks.count("gets") == 1);
  }
  {  // curl --connect-to's form: the URL's default port, the connection to the test port
    TempDir moved;
    Gateway gw{
        GatewayConfig(moved)
            .upstreams({{"moved", "https://moved.test.example"}})
            .upstreams_table("resolve = [\"moved.test.example:443:127.0.0.1:" + port + "\"]\n")};
    REQUIRE(gw.started());
    CHECK(gw.get(get_target(bob)).status == 200);
    CHECK(ks.count("gets") == 2);
  }
  {  // pinned to the same server, but a name its certificate does not carry: refused
    TempDir other;
    Gateway gw{
        GatewayConfig(other)
            .upstreams({{"misnamed", "https://keys.elsewhere.example:" + port}})
            .upstreams_table("resolve = [\"keys.elsewhere.example:" + port + ":127.0.0.1\"]\n")};
    REQUIRE(gw.started());
    const HttpResult r = gw.get(get_target(bob));
    CHECK(r.status == 503);
    CHECK_THAT(gw.log(), Contains("outcome=tls_error"));
    CHECK(ks.count("gets") == 2);
  }
}
