// The WKD kind of upstream through the real binary: a test WKD server over real HTTPS (the test
// CA's certificate for test.example and *.test.example), reached through upstreams.resolve as
// curl --resolve would (never real DNS). The advanced place first, the direct one when the
// advanced host cannot be reached, a domain without WKD remembered, a key that does not carry
// the address never cached, and the keyservers still asked for everything else.
#include <catch2/catch.hpp>
#include <csignal>
#include <chrono>
#include <filesystem>
#include <future>
#include <set>
#include <sstream>

#include <unistd.h>

#include "support/actors.hpp"

using namespace hkpgw;
using namespace hkpgw::test;
using Catch::Matchers::Contains;

namespace {

std::string port_of(const TestKeyserver& ks) { return ks.url().substr(ks.url().rfind(':') + 1); }

// [upstreams] keys pinning hosts (HOST -> PORT on 127.0.0.1), then a WKD upstream for
// test.example and its subdomain broken.test.example only (no lookup may reach real DNS).
std::string wkd_toml(const std::vector<std::pair<std::string, std::string>>& pins,
                     const std::string& extra = "") {
  std::string resolve = "resolve = [";
  for (std::size_t i = 0; i < pins.size(); ++i) {
    resolve += (i ? ", \"" : "\"") + pins[i].first + ":443:127.0.0.1:" + pins[i].second + "\"";
  }
  return resolve + "]\n\n[[upstream]]\nname = \"wkd\"\nkind = \"wkd\"\n" +
         "domains = [\"test.example\", \"broken.test.example\"]\n" + extra;
}

std::string get_email(const std::string& address) {
  return "/pks/lookup?op=get&options=mr&search=" + percent_encode_all(address);
}

}  // namespace

TEST_CASE("an address is asked of its own domain first, and what WKD serves is cached",
          "[integration][wkd]") {
  TempDir dir;
  TestKeyserver directory(dir, "wkd-server", "server", "normal", {"wendy.asc", "alice.asc"});
  TestKeyserver ks(dir, "ks", "server", "normal", {"bob.asc", "wendy.asc"});
  const std::string p = port_of(directory);
  Gateway gw{GatewayConfig(dir)
                 .upstreams({{"ks", ks.url()}})
                 .upstreams_table(wkd_toml({{"openpgpkey.test.example", p}, {"test.example", p}}))};
  REQUIRE(gw.started());
  const std::string wendy = fixture("WENDY_FPR");

  const HttpResult got = gw.get(get_email("Wendy@Test.Example"));
  INFO(got.body.substr(0, 300) << gw.log());
  REQUIRE(got.status == 200);
  CHECK(got.header("x-hkp-cache") == "miss");
  CHECK(directory.count("wkd") == 1);  // the advanced place answered
  CHECK(ks.count("gets") == 0);        // the domain spoke: no keyserver asked
  CHECK(gw.process().wait_for("upstream=wkd"));
  Gpg reader;
  const std::string file = dir / "wendy.asc";
  write_file(file, got.body);
  REQUIRE(reader({"--import", file}).exit_code == 0);
  CHECK(reader.fingerprints() == std::vector<std::string>{wendy});

  // Cached like any key: every front serves it, and nobody is asked again.
  CHECK(gw.get(get_email("wendy@test.example")).header("x-hkp-cache") == "hit");
  CHECK(gw.get("/vks/v1/by-email/wendy%40test.example").status == 200);
  CHECK(gw.get("/pks/v2/certs/by-identity/wendy@test.example").status == 200);
  CHECK(gw.get(get_target(wendy)).header("x-hkp-cache") == "hit");
  CHECK(directory.count("wkd") == 1);

  // A listing by address: from the domain's keys too.
  const HttpResult listing =
      gw.get("/pks/lookup?op=index&options=mr&search=wendy%40test.example");
  INFO(listing.body);
  REQUIRE(listing.status == 200);
  CHECK_THAT(listing.body, Contains("pub:" + wendy + ":"));
  CHECK(directory.count("wkd") == 2);
  CHECK(ks.count("indexes") == 0);

  // Not an address, or another domain: the keyservers alone, the directory never.
  CHECK(gw.get(get_target(fixture("BOB_FPR"))).status == 200);
  CHECK(gw.get(get_email("bob+keys@example.org")).status == 200);
  CHECK(directory.count("wkd") == 2);
  // An address the domain does not publish: 404 there, then the keyservers (who lack it too).
  CHECK(gw.get(get_email("nobody@test.example")).status == 404);
  CHECK(directory.count("wkd") == 3);
  CHECK(ks.count("gets") == 3);

  // gpg's own address lookup, through the gateway as its keyserver (what the README shows).
  Gpg locator;
  const RunResult located = locator({"--auto-key-locate", "clear,keyserver", "--locate-keys",
                                     "wendy@test.example"}, gw.hkp_url());
  INFO(located.err);
  CHECK(located.exit_code == 0);
  CHECK(locator.fingerprints() == std::vector<std::string>{wendy});

  // Uploads go to the keyservers only; the WKD upstream is no target and no queue.
  const std::string erin = read_file(data_dir() + "/erin.asc");
  const HttpResult add = post_add(gw, "keytext=" + percent_encode_all(erin));
  INFO(add.body);
  CHECK(add.status == 200);
  CHECK_THAT(add.body, Contains("forwarded to ks"));
  CHECK(add.body.find("wkd") == std::string::npos);

  // Its health is its own and stays good; it has no connections of a server to count.
  const std::string m = http_get(gw.admin(), "/metrics").body;
  CHECK_THAT(m, Contains("hkp_gateway_upstream_healthy{upstream=\"wkd\"} 1"));
  CHECK_THAT(m, Contains("hkp_gateway_upstream_requests_total{outcome=\"ok\",upstream=\"wkd\"}"));
  CHECK_THAT(gw.get("/help").body, Contains("Public keyservers answering: 2 of 2"));
}

TEST_CASE("the direct place when the advanced host is unreachable - a domain without WKD is "
          "remembered and the keyservers answer",
          "[integration][wkd]") {
  TempDir dir;
  TestKeyserver directory(dir, "wkd-server", "server", "normal", {"wendy.asc"});
  TestKeyserver broken(dir, "broken", "server", "fail", {});  // HTTP 500 to everything
  TestKeyserver ks(dir, "ks", "server", "normal", {"bob.asc"});
  const std::string closed = std::to_string(free_loopback_port());  // nobody listens
  Gateway gw{GatewayConfig(dir)
                 .upstreams({{"ks", ks.url()}})
                 .upstreams_table(wkd_toml({{"openpgpkey.test.example", closed},
                                            {"test.example", port_of(directory)},
                                            {"openpgpkey.broken.test.example", closed},
                                            {"broken.test.example", port_of(broken)}}))};
  REQUIRE(gw.started());

  const HttpResult direct = gw.get(get_email("wendy@test.example"));
  INFO(direct.body.substr(0, 200) << gw.log());
  CHECK(direct.status == 200);
  CHECK(directory.count("wkd") == 1);

  // broken.test.example: advanced unreachable, direct answers 500. Not the gateway's failure:
  // the keyservers are asked, the client hears their 404, the domain is remembered.
  const HttpResult first = gw.get(get_email("someone@broken.test.example"));
  CHECK(first.status == 404);
  CHECK(broken.count("requests") == 1);
  CHECK(ks.count("gets") == 1);
  CHECK(gw.process().wait_for("event=wkd_domain_absent upstream=wkd domain=broken.test.example"));
  const HttpResult second = gw.get(get_email("another@broken.test.example"));
  CHECK(second.status == 404);
  CHECK(broken.count("requests") == 1);  // remembered: not asked again
  CHECK(ks.count("gets") == 2);
  CHECK(occurrences(gw.log(), "event=wkd_domain_absent") == 1);
  const std::string m = http_get(gw.admin(), "/metrics").body;
  CHECK_THAT(m, Contains("hkp_gateway_upstream_healthy{upstream=\"wkd\"} 1"));
  CHECK(http_get(gw.admin(), "/readyz").status == 200);
}

TEST_CASE("a key from WKD that does not carry the address is never cached", "[integration][wkd]") {
  TempDir dir;
  TestKeyserver directory(dir, "wkd-server", "server", "wrongkey", {"wendy.asc", "alice.asc"});
  TestKeyserver ks(dir, "ks", "server", "normal", {"bob.asc"});
  const std::string p = port_of(directory);
  Gateway gw{GatewayConfig(dir)
                 .upstreams({{"ks", ks.url()}})
                 .upstreams_table(wkd_toml({{"openpgpkey.test.example", p}, {"test.example", p}}))};
  REQUIRE(gw.started());
  const HttpResult r = gw.get(get_email("wendy@test.example"));
  CHECK(r.status == 404);  // the directory's answer was alice's key; the keyserver has none
  CHECK(directory.count("wkd") == 1);
  CHECK(cached_keys(gw) == 0);
  CHECK_THAT(http_get(gw.admin(), "/metrics").body,
             Contains("hkp_gateway_upstream_key_mismatch_total{upstream=\"wkd\"} 1"));
}

TEST_CASE("a gateway with WKD alone keeps submissions and serves addresses",
          "[integration][wkd]") {
  TempDir dir;
  TestKeyserver directory(dir, "wkd-server", "server", "normal", {"wendy.asc"});
  const std::string p = port_of(directory);
  Gateway gw{GatewayConfig(dir).upstreams_table(
      wkd_toml({{"openpgpkey.test.example", p}, {"test.example", p}}))};
  REQUIRE(gw.started());
  CHECK(gw.get(get_email("wendy@test.example")).status == 200);
  // A key ID: nobody to ask, 404 (not 503: no keyserver is down, there is none).
  CHECK(gw.get(get_target(fixture("BOB_FPR"))).status == 404);
  const std::string erin = read_file(data_dir() + "/erin.asc");
  const HttpResult add = post_add(gw, "keytext=" + percent_encode_all(erin));
  INFO(add.body);
  CHECK(add.status == 200);
  CHECK(add.body.find("queued") == std::string::npos);
  CHECK(gw.get(get_target(fixture("ERIN_FPR"))).header("x-hkp-cache") == "hit");
}

TEST_CASE("WKD resolves and connects on a thread of its own, which a reload ends cleanly",
          "[integration][wkd]") {
  TempDir dir;
  TestKeyserver directory(dir, "wkd-server", "server", "normal", {"wendy.asc"});
  TestKeyserver ks(dir, "ks", "server", "normal", {"bob.asc"});
  const std::string p = port_of(directory);
  Gateway gw{GatewayConfig(dir)
                 .upstreams({{"ks", ks.url()}})
                 .upstreams_table(wkd_toml({{"openpgpkey.test.example", p}, {"test.example", p}}))};
  REQUIRE(gw.started());
  // Names from input are resolved there: a domain with slow DNS holds up WKD lookups only.
  CHECK(thread_names(gw.process().pid()).contains("hkpgw-wkd"));
  REQUIRE(gw.get(get_email("wendy@test.example")).status == 200);

  // A reload without the WKD upstream: its thread and connections go; serving goes on.
  std::string toml = read_file(gw.config_path());
  toml = toml.substr(0, toml.find("\n[[upstream]]\nname = \"wkd\"")) +
         "\n[[upstream]]\nname = \"ks\"\nurl = \"" + ks.url() + "\"\n";
  write_file(gw.config_path(), toml);
  gw.process().signal(SIGHUP);
  REQUIRE(gw.process().wait_for("event=config_reload result=success"));
  CHECK(eventually([&] { return !thread_names(gw.process().pid()).contains("hkpgw-wkd"); }));
  CHECK(gw.get(get_email("wendy@test.example")).header("x-hkp-cache") == "hit");
  CHECK(gw.get(get_target(fixture("BOB_FPR"))).status == 200);
}

namespace {

// The gateway in a mount namespace of its own whose /etc/hosts says `hosts` (lines "ADDR NAME"):
// real name resolution (getaddrinfo), no DNS server, nothing outside changed.
struct GatewayWithHosts {
  std::string admin, hkp;
  std::unique_ptr<Process> process;
  GatewayWithHosts(const TempDir& dir, const std::string& hosts, const std::string& upstream) {
    write_file(dir / "hosts", "127.0.0.1 localhost\n" + hosts);
    const std::string cfg = dir / "gateway.toml";
    write_file(cfg, "[server]\nlisten = [\"127.0.0.1:0\"]\n[admin]\nlisten = \"127.0.0.1:0\"\n"
                    "[cache]\npath = \"" + dir / "cache" + "\"\n[[upstream]]\n" + upstream);
    process = std::make_unique<Process>(
        std::vector<std::string>{"unshare", "-m", "sh", "-c",
                                 "mount --bind \"$0\" /etc/hosts && exec \"$@\"", dir / "hosts",
                                 HKPGW_BINARY, "--config", cfg},
        dir / "gw");
    if (!process->wait_for("event=started")) return;
    std::istringstream in(process->err());
    for (std::string line; std::getline(in, line);) {
      const auto at = line.find(" addr=");
      if (at == std::string::npos) continue;
      const std::string addr = line.substr(at + 6, line.find(' ', at + 6) - at - 6);
      if (line.find("listener=hkp") != std::string::npos) hkp = addr;
      if (line.find("listener=admin") != std::string::npos) admin = addr;
    }
  }
};

}  // namespace

TEST_CASE("a WKD domain resolving to the gateway's own network is never connected to",
          "[integration][wkd]") {
  if (::geteuid() != 0) {
    WARN("needs root for a mount namespace (CI runs as root): not run");
    return;
  }
  const std::string hosts = "127.0.0.5 openpgpkey.test.example\n10.99.99.1 test.example\n";
  const std::string wkd = "name = \"wkd\"\nkind = \"wkd\"\ndomains = [\"test.example\"]\n";
  SECTION("by default: refused after resolution, naming the addresses") {
    TempDir dir;
    GatewayWithHosts gw(dir, hosts, wkd);
    REQUIRE_FALSE(gw.hkp.empty());
    CHECK(http_get(gw.hkp, get_email("wendy@test.example")).status == 404);
    // Before: a connection to 127.0.0.5:443, then to 10.99.99.1:443.
    const auto refused = gw.process->wait_for("resolves only to non-public addresses");
    INFO(gw.process->err());
    REQUIRE(refused);
    // The advanced host first, then the direct one: each refused (the line names the last).
    CHECK_THAT(gw.process->err(), Contains("(10.99.99.1)"));
    CHECK_THAT(gw.process->err(), !Contains("Connection refused"));
  }
  SECTION("allow_networks lets an organisation's own WKD server be reached") {
    TempDir dir;
    GatewayWithHosts gw(dir, hosts, wkd + "allow_networks = [\"127.0.0.0/8\", \"10.0.0.0/8\"]\n");
    REQUIRE_FALSE(gw.hkp.empty());
    CHECK(http_get(gw.hkp, get_email("wendy@test.example")).status == 404);
    CHECK(gw.process->wait_for("wkd_domain_absent"));  // it tried: nothing listens there
    CHECK_THAT(gw.process->err(), !Contains("non-public"));
  }
}

TEST_CASE("addresses whose domain a resolver would read as a number never reach WKD",
          "[integration][wkd]") {
  TempDir dir;
  TestKeyserver ks(dir, "ks", "server", "normal", {"bob.asc"});
  Gateway gw{GatewayConfig(dir)
                 .upstreams({{"ks", ks.url()}})
                 .tables("[[upstream]]\nname = \"wkd\"\nkind = \"wkd\"\n")};  // every domain
  REQUIRE(gw.started());
  for (const char* address : {"x@127.0.0.0x5", "x@0xa.0x63.0x63.0x1", "x@127.1", "x@2130706433.0"}) {
    INFO(address);
    CHECK(gw.get(get_email(address)).status == 404);
  }
  CHECK_THAT(gw.log(), !Contains("upstream=wkd"));
  CHECK_THAT(gw.log(), !Contains("wkd_domain_absent"));
}

TEST_CASE("new WKD domains are asked at most 20 a second after a burst of 50 hosts",
          "[integration][wkd]") {
  // Each new domain costs a resolution, a connection and a TLS handshake on WKD's thread: a
  // client listing 150 made-up domains gets the burst (50 new hosts), then 20 a second; the
  // rest are not asked now (the keyservers answer), and a line says so.
  TempDir dir;
  TestKeyserver directory(dir, "wkd-server", "server", "normal", {});
  const std::string closed = std::to_string(free_loopback_port());  // no advanced host
  constexpr int kDomains = 150;
  std::string resolve = "resolve = [";
  for (int i = 0; i < kDomains; ++i) {
    const std::string d = "d" + std::to_string(i) + ".test.example";
    resolve += "\"openpgpkey." + d + ":443:127.0.0.1:" + closed + "\", \"" + d +
               ":443:127.0.0.1:" + port_of(directory) + "\", ";
  }
  Gateway gw{GatewayConfig(dir).upstreams_table(
      resolve + "]\n\n[[upstream]]\nname = \"wkd\"\nkind = \"wkd\"\n")};
  REQUIRE(gw.started());
  const auto started = std::chrono::steady_clock::now();
  std::vector<std::future<int>> lookups;
  for (int t = 0; t < 5; ++t) {
    lookups.push_back(std::async(std::launch::async, [&gw, t] {
      int answered = 0;
      for (int i = t; i < kDomains; i += 5) {
        answered += gw.get(get_email("x@d" + std::to_string(i) + ".test.example")).status == 404;
      }
      return answered;
    }));
  }
  int answered = 0;
  for (auto& l : lookups) answered += l.get();
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  CHECK(answered == kDomains);  // no key anywhere: 404, limited or not
  // Two new hosts a domain (the advanced one refuses, the direct one answers): at most the
  // burst plus 20 a second of hosts were opened, so at most half as many domains reached.
  const int asked = directory.count("wkd");
  INFO("asked " << asked << " of " << kDomains << " in " << seconds << " s");
  CHECK(asked > 0);
  CHECK(asked <= static_cast<int>((50 + 20 * (seconds + 1)) / 2) + 1);
  CHECK(asked < kDomains);
  CHECK(gw.process().wait_for("event=wkd_new_domains_limited"));
}
