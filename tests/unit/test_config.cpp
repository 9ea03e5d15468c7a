#include <catch2/catch.hpp>

#include "config/config.hpp"
#include "support/harness.hpp"

using namespace hkpgw::config;
using Catch::Matchers::Contains;

namespace {

// The problems of a config text, joined; "" when it loads.
std::string problems_of(const std::string& toml) {
  try {
    load_string(toml, "test.toml");
    return "";
  } catch (const ConfigError& e) {
    return e.what();
  }
}

}  // namespace

TEST_CASE("the embedded defaults are the documented ones", "[config][unit]") {
  const Config c = defaults();
  REQUIRE(c.server.listen.size() == 1);
  CHECK(c.server.listen[0].text() == "127.0.0.1:11371");
  CHECK(c.admin.listen.text() == "127.0.0.1:11380");
  CHECK(c.server.max_header_bytes == 16 * 1024);
  CHECK(c.server.max_body_bytes == 1024 * 1024);
  CHECK(c.cache.path == "var/cache");
  CHECK(c.cache.fresh_for == std::chrono::hours(1));
  CHECK(c.cache.negative_ttl == std::chrono::minutes(5));
  REQUIRE(c.upstreams.list.size() == 2);
  CHECK(c.upstreams.default_name == "ubuntu");
  CHECK(c.upstreams.list[1].endpoint.host == "keys.openpgp.org");
  CHECK(c.keys.short_key_ids == ShortKeyIds::reject);
  CHECK(c.keys.third_party_sigs == ThirdPartySigs::strip);
  CHECK(c.keys.certifiers.empty());
  CHECK_FALSE(c.server.honor_client_no_cache);
}

TEST_CASE("an empty file is the defaults", "[config][unit]") {
  const Config c = load_string("", "empty.toml");
  CHECK(c.upstreams.list.size() == 2);
  CHECK(c.upstreams.default_name == "ubuntu");
  CHECK(c.source == "empty.toml");
}

TEST_CASE("a full config is read", "[config][unit]") {
  const Config c = load_string(R"(
[server]
listen = ["127.0.0.1:11371", "[::1]:11371"]
threads = 4
max_header_bytes = "8KiB"
max_body_bytes = 2097152
client_timeout = "5s"
honor_client_no_cache = true

[cache]
path = "/var/lib/hkp-gateway"
max_size = "2GiB"
fresh_for = "30m"
negative_ttl = "1m"

[upstreams]
default = "second"
connect_timeout = "1s"
merge = "all"
forward_adds = "none"
unhealthy_threshold = 5

[[upstream]]
name = "first"
url = "https://one.example"

[[upstream]]
name = "second"
url = "hkps://two.example:8443"
probe = "/pks/lookup?op=stats"

[keys]
third_party_sigs = "strip"
short_key_ids = "cache_only"
)",
                               "full.toml");
  CHECK(c.server.listen.size() == 2);
  CHECK(c.server.threads == 4);
  CHECK(c.server.max_header_bytes == 8192);
  CHECK(c.server.max_body_bytes == 2097152);
  CHECK(c.server.honor_client_no_cache);
  CHECK(c.cache.max_size == 2ULL << 30);
  CHECK(c.upstreams.merge == MergePolicy::all);
  CHECK(c.upstreams.forward_adds == ForwardAdds::none);
  CHECK(c.upstreams.unhealthy_threshold == 5);
  REQUIRE(c.upstreams.list.size() == 2);
  CHECK(c.upstreams.list[1].endpoint.port == 8443);
  CHECK(c.upstreams.try_order() == std::vector<std::size_t>{1, 0});
  CHECK(c.keys.short_key_ids == ShortKeyIds::cache_only);
}

TEST_CASE("the default upstream is the first one when not named", "[config][unit]") {
  const Config c = load_string(
      "[[upstream]]\nname = \"a\"\nurl = \"https://a.example\"\n"
      "[[upstream]]\nname = \"b\"\nurl = \"https://b.example\"\n",
      "t.toml");
  CHECK(c.upstreams.default_name == "a");
  CHECK(c.upstreams.try_order() == std::vector<std::size_t>{0, 1});
}

TEST_CASE("config errors name the file, line and key path", "[config][unit]") {
  SECTION("unknown key") {
    CHECK_THAT(problems_of("[server]\nthreads = 2\nlisen = []\n"),
               Contains("test.toml:3: server.lisen: unknown key"));
  }
  SECTION("unknown section") {
    CHECK_THAT(problems_of("[sever]\n"), Contains("sever: unknown key"));
  }
  SECTION("wrong type") {
    CHECK_THAT(problems_of("[server]\nthreads = \"four\"\n"),
               Contains("test.toml:2: server.threads: expected an integer, got a string"));
  }
  SECTION("bad duration") {
    CHECK_THAT(problems_of("[cache]\nfresh_for = \"1 hour\"\n"),
               Contains("test.toml:2: cache.fresh_for:"));
  }
  SECTION("impossible value") {
    CHECK_THAT(problems_of("[upstreams]\nunhealthy_threshold = 0\n"),
               Contains("upstreams.unhealthy_threshold: must be between 1 and 1000"));
  }
  SECTION("bad enum") {
    CHECK_THAT(problems_of("[upstreams]\nmerge = \"some\"\n"),
               Contains("upstreams.merge: expected one of \"first\", \"all\""));
  }
  SECTION("http upstream is refused, naming the upstream") {
    const auto p = problems_of("[[upstream]]\nname = \"plain\"\nurl = \"http://keys.example\"\n");
    CHECK_THAT(p, Contains("test.toml:3: upstream[0].url: upstream \"plain\""));
    CHECK_THAT(p, Contains("HTTPS only"));
  }
  SECTION("hkp upstream is refused") {
    CHECK_THAT(problems_of("[[upstream]]\nname = \"x\"\nurl = \"hkp://keys.example\"\n"),
               Contains("not hkp://"));
  }
  SECTION("duplicate upstream names") {
    CHECK_THAT(problems_of("[[upstream]]\nname = \"x\"\nurl = \"https://a\"\n"
                           "[[upstream]]\nname = \"x\"\nurl = \"https://b\"\n"),
               Contains("upstream[1].name: duplicate upstream name \"x\""));
  }
  SECTION("default names no upstream") {
    CHECK_THAT(problems_of("[upstreams]\ndefault = \"nope\"\n"),
               Contains("test.toml:2: upstreams.default: no [[upstream]] is named \"nope\""));
  }
  SECTION("TLS listener without a certificate") {
    CHECK_THAT(problems_of("[server]\nhkps_listen = [\"127.0.0.1:443\"]\n"),
               Contains("server.hkps_listen: TLS listeners need server.tls_cert"));
  }
  SECTION("unreadable CA file") {
    CHECK_THAT(problems_of("[upstreams]\nca_file = \"/nonexistent/ca.pem\"\n"),
               Contains("upstreams.ca_file: cannot read \"/nonexistent/ca.pem\""));
  }
  SECTION("TOML syntax: one line, FILE:LINE: first, as every other problem") {
    const std::string unclosed = problems_of("[server\n");
    CHECK(unclosed.starts_with("test.toml:1: TOML syntax error: "));
    CHECK(std::count(unclosed.begin(), unclosed.end(), '\n') <= 1);
    // The line where the parser gave up, and what each quoted place says.
    CHECK(problems_of("[server]\nthreads = 2\nlisten = [\"127.0.0.1:1\"\n[admin]\n") ==
          "test.toml:4: TOML syntax error: missing array separator `,` after a value (line 3: "
          "array starts here; line 4: should be `,`)");
    CHECK_THAT(problems_of("[server]\nthreads = = 2\n"),
               Contains("test.toml:2: TOML syntax error: "));
  }
  SECTION("certifiers") {
    CHECK_THAT(problems_of("[keys]\ncertifiers = [\"ABCD\"]\ncertifier_keys = \"/etc/hosts\"\n"),
               Contains("test.toml:2: keys.certifiers[0]: expected a v4 fingerprint: 40 hex digits"));
    CHECK_THAT(problems_of("[keys]\ncertifiers = [\"" + std::string(40, 'A') + "\"]\n"),
               Contains("keys.certifiers and keys.certifier_keys go together"));
    CHECK_THAT(problems_of("[keys]\ncertifiers = [\"" + std::string(40, 'a') +
                           "\"]\ncertifier_keys = \"/nonexistent/ca.asc\"\n"),
               Contains("keys.certifier_keys: cannot read \"/nonexistent/ca.asc\""));
    const Config c = load_string("[keys]\ncertifiers = [\"" + std::string(20, 'a') + " " +
                                     std::string(20, 'B') + "\"]\ncertifier_keys = \"/etc/hosts\"\n",
                                 "t.toml");
    REQUIRE(c.keys.certifiers.size() == 1);
    CHECK(c.keys.certifiers[0] == std::string(20, 'A') + std::string(20, 'B'));
    CHECK_FALSE(c.keys.certifier_key_data.empty());
  }
}

TEST_CASE("every problem is reported, not only the first", "[config][unit]") {
  try {
    load_string("[server]\nthreads = -1\nmax_connections = 0\n[cache]\nfresh_for = \"x\"\n", "t.toml");
    FAIL("expected a ConfigError");
  } catch (const ConfigError& e) {
    CHECK(e.problems().size() == 3);
  }
}

TEST_CASE("restart-only changes are named", "[config][unit]") {
  Config a = defaults();
  Config b = defaults();
  b.cache.path = "elsewhere";
  b.cache.fresh_for = std::chrono::minutes(1);
  b.server.threads = 3;
  const auto changed = restart_only_changes(a, b);
  CHECK(changed == std::vector<std::string>{"server.threads", "cache.path"});
}

TEST_CASE("load_file reports a missing file", "[config][unit]") {
  CHECK_THROWS_WITH(load_file("/nonexistent/gw.toml"), Contains("cannot open the config file"));
}

TEST_CASE("a file that is not UTF-8 is refused with its line, before the TOML parser sees it",
          "[config][unit]") {
  // '\xbf' as a key: toml11 3.7 read past its buffer on this (found by tests/fuzz/fuzz_config).
  for (const std::string& text : {std::string("'\xbf'"), std::string("[server]\nthreads = 1 # \xc0\xaf\n"),
                                 std::string("a = \"\xed\xa0\x80\"\n")}) {
    try {
      load_string(text, "bad.toml");
      FAIL("accepted");
    } catch (const ConfigError& e) {
      REQUIRE(e.problems().size() == 1);
      CHECK_THAT(e.problems()[0], Contains("not valid UTF-8"));
      CHECK_THAT(e.problems()[0], Catch::Matchers::StartsWith("bad.toml:"));
    }
  }
  CHECK_THROWS_AS(load_string("[server]\nthreads = 1 # caf\xc3\xa9 \xf0\x9f\x94\x91\nnope = 1\n", "ok.toml"),
                  ConfigError);  // valid UTF-8 passes on to the parser (and nope is unknown)
}

TEST_CASE("upstreams.resolve pins host names to addresses, as curl --resolve does",
          "[config][unit]") {
  const Config c = load_string(
      "[upstreams]\nresolve = [\"Keys.Example.ORG:443:192.0.2.7\", \"v6.example:8443:[2001:db8::1]\",\n"
      "  \"bare.example:443:::1\", \"moved.example:443:127.0.0.1:18443\", \"m6.example:443:[::1]:9443\"]\n",
      "test.toml");
  REQUIRE(c.upstreams.resolve.size() == 5);
  CHECK(c.upstreams.resolve[0] == ResolveEntry{"keys.example.org", 443, "192.0.2.7", 0});
  REQUIRE(c.upstreams.pinned("KEYS.example.org", 443));
  CHECK(c.upstreams.pinned("KEYS.example.org", 443)->address == "192.0.2.7");
  CHECK_FALSE(c.upstreams.pinned("keys.example.org", 444));
  CHECK(c.upstreams.pinned("v6.example", 8443)->address == "2001:db8::1");
  CHECK(c.upstreams.resolve[2] == ResolveEntry{"bare.example", 443, "::1", 0});
  // curl --connect-to's form: another port too.
  CHECK(c.upstreams.resolve[3] == ResolveEntry{"moved.example", 443, "127.0.0.1", 18443});
  CHECK(c.upstreams.resolve[4] == ResolveEntry{"m6.example", 443, "::1", 9443});
  for (const char* bad :
       {"keys.example.org", "keys.example.org:443", ":443:192.0.2.7", "keys.example.org:0:192.0.2.7",
        "keys.example.org:x:192.0.2.7", "keys.example.org:443:not-an-ip",
        "keys.example.org:443:", "keys.example.org:443:127.0.0.1:0",
        "keys.example.org:443:127.0.0.1:99999", "keys.example.org:443:[::1",
        "keys.example.org:443:[::1]:", "keys.example.org:443:[::1]x"}) {
    INFO(bad);
    CHECK_THAT(problems_of(std::string("[upstreams]\nresolve = [\"") + bad + "\"]\n"),
               Contains("test.toml:2: upstreams.resolve[0]: expected \"HOST:PORT:ADDRESS\""));
  }
  CHECK_THAT(problems_of("[upstreams]\nresolve = \"a:1:127.0.0.1\"\n"),
             Contains("upstreams.resolve: expected a list"));
}

TEST_CASE("a kind = \"wkd\" upstream: its own keys, never the default", "[config][unit]") {
  const Config c = load_string(
      "[[upstream]]\nname = \"wkd\"\nkind = \"wkd\"\n"
      "domains = [\"Example.ORG\", \"test.example\"]\nask_first = false\nabsent_for = \"10m\"\n"
      "[[upstream]]\nname = \"ks\"\nurl = \"https://keys.example.org\"\n",
      "test.toml");
  REQUIRE(c.upstreams.list.size() == 2);
  const auto& w = c.upstreams.list[0];
  CHECK(w.kind == UpstreamKind::wkd);
  CHECK_FALSE(w.keyserver());
  CHECK(w.url.empty());
  CHECK(w.domains == std::vector<std::string>{"example.org", "test.example"});
  CHECK_FALSE(w.ask_first);
  CHECK(w.absent_for == std::chrono::minutes(10));
  CHECK(c.upstreams.list[1].kind == UpstreamKind::hkp);
  CHECK(c.upstreams.default_name == "ks");  // the first keyserver, not the first upstream
  // WKD alone: no keyserver, no default (submissions are kept, not forwarded).
  const std::string wkd = "[[upstream]]\nname = \"w\"\nkind = \"wkd\"\n";
  CHECK(load_string(wkd, "t.toml").upstreams.default_name.empty());

  CHECK_THAT(problems_of("[upstreams]\ndefault = \"w\"\n" + wkd),
             Contains("upstreams.default: \"w\" is a wkd upstream; the default must be a "
                      "keyserver"));
  CHECK_THAT(problems_of(wkd + "url = \"https://x.example\"\n"),
             Contains("test.toml:4: upstream[0].url: a kind = \"wkd\" upstream asks each "
                      "address's own domain: it has no url"));
  CHECK_THAT(problems_of("[[upstream]]\nname = \"k\"\nurl = \"https://x.example\"\ndomains = []\n"),
             Contains("upstream[0].domains: only a kind = \"wkd\" upstream takes this key"));
  CHECK_THAT(problems_of("[[upstream]]\nname = \"w\"\nkind = \"finger\"\n"),
             Contains("upstream[0].kind"));
  // kind = "vks": a keyserver like hkp, with a url; it may be the default.
  const Config v = load_string("[[upstream]]\nname = \"w\"\nkind = \"wkd\"\n[[upstream]]\n"
                               "name = \"k\"\nkind = \"vks\"\nurl = \"https://keys.example\"\n",
                               "t.toml");
  CHECK(v.upstreams.list[1].kind == UpstreamKind::vks);
  CHECK(v.upstreams.list[1].keyserver());
  CHECK(v.upstreams.default_name == "k");
  CHECK_THAT(problems_of("[[upstream]]\nname = \"k\"\nkind = \"vks\"\n"),
             Contains("upstream[0].url: every upstream needs a url"));
  for (const char* bad : {"127.0.0.1", "localhost", "intranet", "a..example", "x.localhost",
                          "-", "exa mple.org", ""}) {
    INFO(bad);
    CHECK_THAT(problems_of(wkd + "domains = [\"" + bad + "\"]\n"),
               Contains("upstream[0].domains[0]: expected a domain name"));
  }
}

TEST_CASE("[cluster]: the peers' admin listeners and who may push", "[config][unit]") {
  hkpgw::test::TempDir dir;
  const std::string secret = dir / "secret";
  hkpgw::test::write_file(secret, std::string(64, 'f') + "\n");
  const Config c = load_string(
      "[cluster]\npeers = [\"10.0.0.11:11380\", \"gw-1.replicas:11380\", \"[fd00::3]:11380\"]\n"
      "trusted = [\"10.0.0.0/24\"]\nsecret_file = \"" + secret + "\"\n",
      "test.toml");
  CHECK(c.cluster.secret == std::string(64, 'f'));
  REQUIRE(c.cluster.peers.size() == 3);
  CHECK(c.cluster.peers[1].host == "gw-1.replicas");
  CHECK(c.cluster.peers[2].text() == "[fd00::3]:11380");
  REQUIRE(c.cluster.trusted.size() == 1);
  CHECK(c.cluster.trusted[0].contains("10.0.0.200"));
  // Without the table: no peers, and only loopback may push.
  const Config d = load_string("", "test.toml");
  CHECK(d.cluster.peers.empty());
  REQUIRE(d.cluster.trusted.size() == 2);
  CHECK(d.cluster.trusted[0].contains("127.0.0.1"));

  CHECK_THAT(problems_of("[cluster]\npeers = [\"10.0.0.11\"]\n"),
             Contains("test.toml:2: cluster.peers[0]: missing port"));
  CHECK_THAT(problems_of("[cluster]\npeers = [\"10.0.0.11:0\"]\n"),
             Contains("cluster.peers[0]: a peer needs its admin port, not 0"));
  CHECK_THAT(problems_of("[cluster]\npeers = \"10.0.0.11:11380\"\n"),
             Contains("cluster.peers: expected a list of at most 64 admin listeners"));
  CHECK_THAT(problems_of("[cluster]\ntrusted = [\"10.0.0.0/99\"]\n"),
             Contains("cluster.trusted[0]"));
  CHECK_THAT(problems_of("[cluster]\npeer = []\n"), Contains("cluster.peer"));
  // Peers share a secret, or they are no cluster: an address in cluster.trusted is not enough.
  CHECK_THAT(problems_of("[cluster]\npeers = [\"10.0.0.11:11380\"]\n"),
             Contains("cluster.secret_file: replicas with [cluster] peers must share a secret"));
  hkpgw::test::write_file(secret, "short\n");
  CHECK_THAT(problems_of("[cluster]\nsecret_file = \"" + secret + "\"\n"),
             Contains("holds 5 bytes: a cluster secret is 32 bytes to 4 KiB"));
  CHECK_THAT(problems_of("[cluster]\nsecret_file = \"/nonexistent/s\"\n"),
             Contains("cluster.secret_file: cannot read \"/nonexistent/s\""));
}

TEST_CASE("a one-line list of 60,000 networks parses in linear time, values unchanged",
          "[config][unit]") {
  // The TOML parser is quadratic in a line's length: this file held a reload 224 s.
  std::string deny = "[limits]\ndeny = [";
  for (int i = 0; i < 60000; ++i) {
    deny += (i ? ", \"10." : "\"10.") + std::to_string(i / 256) + "." + std::to_string(i % 256) +
            ".0/24\"";
  }
  deny += "]  # a comment, with a comma\n";
  const std::string text = deny +
      "exempt = [\"127.0.0.0/8\"]\n[server]\nlisten = [\"127.0.0.1:11371\"]\n"
      "[[upstream]]\nname = \"ab\"\nurl = \"https://keys.example:443\"\n";
  const auto c = hkpgw::config::load_string(text, "long.toml");
  REQUIRE(c.limits.deny.size() == 60000);
  CHECK(c.limits.deny.front().text == "10.0.0.0/24");
  CHECK(c.limits.deny.back().text == "10.234.95.0/24");
  CHECK(c.upstreams.list.at(0).name == "ab");  // the comment's comma stayed in the comment
  // A mistake after the long line is still found and named.
  try {
    hkpgw::config::load_string(deny + "[server]\nthreads = \"many\"\n", "long.toml");
    FAIL("accepted");
  } catch (const hkpgw::config::ConfigError& e) {
    REQUIRE_FALSE(e.problems().empty());
    CHECK_THAT(e.problems().front(), Catch::Matchers::Contains("server.threads"));
  }
}

TEST_CASE("credential:NAME reads a secret systemd's LoadCredential= put in CREDENTIALS_DIRECTORY",
          "[config][unit]") {
  hkpgw::test::TempDir creds;
  hkpgw::test::write_file(creds / "admin-token", "token-from-a-credential-0123\n");
  const std::string toml = "[admin]\ntoken_file = \"credential:admin-token\"\n";
  ::setenv("CREDENTIALS_DIRECTORY", creds.path().c_str(), 1);
  const Config cfg = load_string(toml, "test.toml");
  CHECK(cfg.admin.token == "token-from-a-credential-0123");
  CHECK(cfg.admin.token_file == creds / "admin-token");
  // A name that would leave the directory is refused.
  CHECK_THAT(problems_of("[server]\ntls_key = \"credential:../etc/shadow\"\n"),
             Contains("test.toml:2: server.tls_key: \"credential:../etc/shadow\": a credential's "
                      "NAME is a file name, without '/'"));
  ::unsetenv("CREDENTIALS_DIRECTORY");
  // Outside a unit with LoadCredential=: the problem says what to add.
  CHECK_THAT(problems_of(toml),
             Contains("test.toml:2: admin.token_file: \"credential:admin-token\" names a systemd "
                      "credential, but CREDENTIALS_DIRECTORY is not set: give the unit "
                      "LoadCredential=admin-token:/path/to/the/file"));
}
