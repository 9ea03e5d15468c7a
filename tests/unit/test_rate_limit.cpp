// Per-client rate limits: which budget a request spends, the token buckets (a fake clock), the
// 429 they answer, exemptions, reloads, and the bound on memory however many addresses appear.
#include <arpa/inet.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdio>
#include <random>

#include "gateway/cluster/cluster_spends.hpp"
#include "gateway/http/rate_limit.hpp"

using namespace hkpgw;
using namespace hkpgw::gateway;
using hkp::Budget;
using Catch::Matchers::Contains;

namespace {

// The peer as the server fills it in (http_wire's peer_of): the address as text and as bytes.
void set_address(Peer& p, const std::string& address) {
  p.address = address;
  p.family = inet_pton(AF_INET, address.c_str(), p.ip) == 1    ? 4
             : inet_pton(AF_INET6, address.c_str(), p.ip) == 1 ? 6
                                                                 : 0;
}

HttpRequest request(const std::string& method, const std::string& target,
                    const std::string& address = "192.0.2.7") {
  HttpRequest r;
  r.method = method;
  r.target = target;
  set_address(r.peer, address);
  r.peer.client = address;
  return r;
}

struct FakeClock {
  std::chrono::steady_clock::time_point t{std::chrono::hours(1)};
  RateLimiter::Clock clock() {
    return [this] { return t; };
  }
};

config::LimitsConfig limits(double rate, std::uint64_t burst) {
  config::LimitsConfig l;
  l.key_lookups = {rate, burst};
  l.searches = {rate, burst};
  l.submissions = {rate, burst};
  return l;
}

}  // namespace

TEST_CASE("each request spends the budget of what it asks for", "[limits][unit]") {
  const std::string fpr = "A2D09A19150279F966C7DE0E116CE4D8CC373801";
  const std::vector<std::tuple<std::string, std::string, Budget>> cases = {
      {"GET", "/pks/lookup?op=get&search=0x" + fpr, Budget::key_lookup},
      {"GET", "/pks/lookup?search=" + fpr.substr(24) + "&op=get&options=mr", Budget::key_lookup},
      {"GET", "/pks/lookup?op=get&search=A2D0%209A19%201502%2079F9%2066C7", Budget::key_lookup},
      {"HEAD", "/pks/lookup?OP=get&SEARCH=0x" + fpr, Budget::key_lookup},
      {"GET", "/pks/lookup?op=get&search=alice%40example.org", Budget::search},
      {"GET", "/pks/lookup?op=index&search=Alice", Budget::search},
      {"GET", "/pks/lookup?op=stats", Budget::none},
      {"GET", "/pks/lookup?op=get", Budget::none},  // a 400 anyway
      // Names are read as the lookup parser reads them: escaped, they spend the same budget.
      {"GET", "/pks/lookup?op=index&se%61rch=alice%40example.org", Budget::search},
      {"GET", "/pks/lookup?%6fp=index&search=Alice", Budget::search},
      {"GET", "/pks/lookup?%6F%70=get&%73earch=0x" + fpr, Budget::key_lookup},
      {"GET", "/vks/v1/by-fingerprint/" + fpr, Budget::key_lookup},
      {"GET", "/vks/v1/by-keyid/" + fpr.substr(24), Budget::key_lookup},
      {"GET", "/vks/v1/by-email/alice%40example.org", Budget::search},
      {"GET", "/pks/v2/certs/by-vfingerprint/04" + fpr, Budget::key_lookup},
      {"GET", "/pks/v2/certs/by-identity/alice@example.org", Budget::search},
      {"GET", "/pks/v2/index/alice@example.org", Budget::search},
      {"GET", "/pks/v2/index/04" + fpr, Budget::key_lookup},
      {"GET", "/u/ubuntu/pks/lookup?op=get&search=alice@example.org", Budget::search},
      {"GET", "/u/ubuntu/vks/v1/by-keyid/" + fpr.substr(24), Budget::key_lookup},
      {"POST", "/pks/add", Budget::submission},
      {"POST", "/vks/v1/upload", Budget::submission},
      {"POST", "/vks/v1/request-verify", Budget::submission},
      {"POST", "/pks/v2/certs", Budget::submission},
      {"GET", "/", Budget::none},
      // The web pages spend what the same lookup spends on HKP.
      {"GET", "/search?q=alice%40example.org", Budget::search},
      {"GET", "/search?x=1&q=Alice+Example", Budget::search},
      {"GET", "/search?q=0x" + fpr, Budget::key_lookup},
      {"GET", "/key/" + fpr, Budget::key_lookup},
      {"GET", "/key/" + fpr + ".asc", Budget::key_lookup},
      {"GET", "/upload", Budget::none},
      {"POST", "/upload", Budget::submission},
      {"GET", "/help", Budget::none},
      {"GET", "/assets/site.css", Budget::none},
      {"OPTIONS", "/pks/lookup", Budget::none},
      {"POST", "/pks/lookup", Budget::none},
  };
  for (const auto& [method, target, want] : cases) {
    const HttpRequest r = request(method, target);
    INFO(method << " " << target);
    CHECK(budget_of(r) == want);
  }
}

TEST_CASE("rates and networks in the config", "[limits][unit]") {
  CHECK(config::parse_rate("5/s").value() == 5.0);
  CHECK(config::parse_rate("30/min").value() == 0.5);
  CHECK(config::parse_rate("36/h").value() == Approx(0.01));
  CHECK(config::parse_rate("0").value() == 0.0);
  CHECK(config::parse_rate("off").value() == 0.0);
  for (const char* bad : {"5", "5/day", "-1/s", "x/s", "0/s", "/s", "1e99/s"}) {
    INFO(bad);
    CHECK_FALSE(config::parse_rate(bad).ok());
  }
  const auto v4 = config::parse_network("10.1.0.0/16").value();
  CHECK(v4.contains("10.1.200.3"));
  CHECK_FALSE(v4.contains("10.2.0.1"));
  CHECK(v4.contains("::ffff:10.1.0.9"));  // IPv4-mapped is IPv4
  const auto v6 = config::parse_network("2001:db8:1::/48").value();
  CHECK(v6.contains("2001:db8:1:ffff::1"));
  CHECK_FALSE(v6.contains("2001:db8:2::1"));
  CHECK_FALSE(v6.contains("10.1.0.1"));
  CHECK(config::parse_network("192.0.2.7").value().contains("192.0.2.7"));
  CHECK_FALSE(config::parse_network("192.0.2.7").value().contains("192.0.2.8"));
  CHECK(config::parse_network("10.0.0.0/9").value().contains("10.127.0.1"));
  CHECK_FALSE(config::parse_network("10.0.0.0/9").value().contains("10.128.0.1"));
  for (const char* bad : {"10.0.0.0/33", "::/129", "not-an-ip", "10.0.0.0/", "10.0.0.0/x"}) {
    INFO(bad);
    CHECK_FALSE(config::parse_network(bad).ok());
  }
  const auto c = config::load_string(
      "[limits]\nkey_lookups = \"2/s\"\nkey_lookups_burst = 7\nsearches = \"0\"\n"
      "exempt = [\"10.0.0.0/8\"]\nmax_clients = 5000\n"
      "deny = [\"203.0.113.0/24\", \"2001:db8::/32\"]\n",
      "t.toml");
  CHECK(c.limits.key_lookups.rate == 2.0);
  CHECK(c.limits.key_lookups.burst == 7);
  CHECK_FALSE(c.limits.searches.limited());
  CHECK(c.limits.exempt.size() == 1);
  CHECK(c.limits.max_clients == 5000);
  CHECK(c.limits.deny.size() == 2);
  // The defaults: keys.openpgp.org's budgets, loopback exempt.
  const auto d = config::load_string("", "t.toml");
  CHECK(d.limits.key_lookups.rate == 5.0);
  CHECK(d.limits.key_lookups.burst == 1000);
  CHECK(d.limits.searches.rate == Approx(1.0 / 60));
  CHECK(d.limits.searches.burst == 50);
  CHECK(d.limits.exempt.size() == 2);
  CHECK(d.limits.deny.empty());
  try {
    config::load_string(
        "[limits]\nsearches = \"5/day\"\nexempt = [\"10.0.0.0/40\"]\ndeny = [\"nowhere\"]\n",
        "t.toml");
    FAIL("accepted");
  } catch (const config::ConfigError& e) {
    CHECK_THAT(e.what(), Contains("t.toml:2: limits.searches: unknown unit \"day\""));
    CHECK_THAT(e.what(), Contains("limits.exempt[0]"));
    CHECK_THAT(e.what(), Contains("t.toml:4: limits.deny[0]: \"nowhere\" is not an IP address"));
  }
}

TEST_CASE("a burst, then 429 with Retry-After until tokens come back", "[limits][unit]") {
  FakeClock fake;
  Metrics metrics("test");
  RateLimiter limiter(metrics, fake.clock());
  limiter.configure(limits(0.5, 3));  // a token every 2 s, bursts of 3
  const HttpRequest get = request("GET", "/vks/v1/by-keyid/116CE4D8CC373801");
  for (int i = 0; i < 3; ++i) CHECK_FALSE(limiter.admit(get));
  auto refused = limiter.admit(get);
  REQUIRE(refused);
  CHECK(refused->status == 429);
  CHECK(refused->payload() ==
        "Too many requests: this address is over its budget of key lookups (30 per minute, "
        "bursts of 3); retry after 2 s\n");
  const auto retry = std::find_if(refused->headers.begin(), refused->headers.end(),
                                  [](const auto& h) { return h.first == "Retry-After"; });
  REQUIRE(retry != refused->headers.end());
  CHECK(retry->second == "2");
  // Other budgets and other clients are untouched.
  CHECK_FALSE(limiter.admit(request("GET", "/vks/v1/by-email/a%40b.example")));
  CHECK_FALSE(limiter.admit(request("GET", "/vks/v1/by-keyid/116CE4D8CC373801", "192.0.2.8")));
  // Time gives tokens back, at the rate.
  fake.t += std::chrono::seconds(2);
  CHECK_FALSE(limiter.admit(get));
  CHECK(limiter.admit(get));
  fake.t += std::chrono::hours(1);  // capped at the burst, however long the pause
  for (int i = 0; i < 3; ++i) CHECK_FALSE(limiter.admit(get));
  CHECK(limiter.admit(get));
  CHECK_THAT(metrics.render({}),
             Contains("hkp_gateway_rate_limited_total{budget=\"key_lookups\"} 3"));

  // A reload that raises the budget lets the client on; one that turns it off, everyone.
  limiter.configure(limits(0, 1));
  for (int i = 0; i < 10; ++i) CHECK_FALSE(limiter.admit(get));
}

TEST_CASE("exempt networks are never limited, and requests of no budget never", "[limits][unit]") {
  FakeClock fake;
  RateLimiter limiter(Metrics::none(), fake.clock());
  auto l = limits(1.0 / 3600, 1);
  l.exempt = {config::parse_network("10.0.0.0/8").value(), config::parse_network("::1").value()};
  limiter.configure(l);
  for (int i = 0; i < 100; ++i) {
    CHECK_FALSE(limiter.admit(request("POST", "/pks/add", "10.20.30.40")));
    CHECK_FALSE(limiter.admit(request("POST", "/pks/add", "::1")));
    CHECK_FALSE(limiter.admit(request("GET", "/", "192.0.2.1")));
  }
  CHECK_FALSE(limiter.admit(request("POST", "/pks/add", "192.0.2.1")));
  CHECK(limiter.admit(request("POST", "/pks/add", "192.0.2.1")));
  CHECK(limiter.tracked() == 1);  // exempt and unlimited requests are not even tracked
}

TEST_CASE("memory is bounded however many addresses appear", "[limits][unit]") {
  FakeClock fake;
  RateLimiter limiter(Metrics::none(), fake.clock());
  auto l = limits(1.0, 5);
  l.max_clients = 1600;  // 100 per shard
  limiter.configure(l);
  for (int i = 0; i < 200000; ++i) {
    const std::string a =
        "2001:db8:" + std::to_string(i / 65536) + ":" + std::to_string(i % 65536) + "::/64";
    HttpRequest r = request("GET", "/vks/v1/by-email/a%40b.example", a);
    set_address(r.peer, "2001:db8::1");
    (void)limiter.admit(r);
    if (i % 1000 == 0) fake.t += std::chrono::milliseconds(1);
  }
  CHECK(limiter.tracked() <= 1600);
  CHECK(limiter.tracked() >= 1500);
  // A client spending its budget right now is still limited amid the churn of strangers
  // whose buckets are full again (they are forgotten first).
  const HttpRequest heavy = request("GET", "/vks/v1/by-email/a%40b.example", "198.51.100.1");
  for (int i = 0; i < 5; ++i) CHECK_FALSE(limiter.admit(heavy));
  fake.t += std::chrono::seconds(10);  // every stranger has refilled; the heavy client spends on
  for (int i = 0; i < 5; ++i) (void)limiter.admit(heavy);
  for (int i = 0; i < 1000; ++i) {
    const std::string stranger = "203.0.113." + std::to_string(i % 250) + "." + std::to_string(i);
    (void)limiter.admit(request("GET", "/vks/v1/by-email/a%40b.example", stranger));
  }
  CHECK(limiter.admit(heavy));
}

TEST_CASE("denied networks get 403 for everything, exempt or not, until a reload lifts it",
          "[limits][unit]") {
  Metrics metrics("test");
  RateLimiter limiter(metrics);
  auto l = limits(0, 1);  // no budget limited: only the deny list can refuse
  l.exempt = {config::parse_network("10.0.0.0/8").value()};
  l.deny = {config::parse_network("10.9.0.0/16").value(),
            config::parse_network("2001:db8:bad::/48").value()};
  limiter.configure(l);
  for (const char* target : {"/", "/pks/lookup?op=stats", "/vks/v1/by-keyid/116CE4D8CC373801"}) {
    INFO(target);
    const HttpRequest denied = request("GET", target, "10.9.1.2");  // exempt and denied
    auto refused = limiter.admit(denied);
    REQUIRE(refused);
    CHECK(refused->status == 403);
    CHECK(refused->payload() ==
          "Forbidden: this gateway's operator refuses requests from this address\n");
    CHECK(denied.access.op == "denied");
  }
  CHECK(limiter.admit(request("POST", "/pks/add", "2001:db8:bad:1::7")));
  CHECK_FALSE(limiter.admit(request("GET", "/", "10.8.255.255")));
  CHECK_FALSE(limiter.admit(request("GET", "/", "2001:db8:bae::1")));
  CHECK_THAT(metrics.render({}), Contains("hkp_gateway_denied_total 4"));
  CHECK(limiter.tracked() == 0);  // a denied client costs no bucket

  l.deny.clear();
  limiter.configure(l);
  CHECK_FALSE(limiter.admit(request("GET", "/", "10.9.1.2")));
}

TEST_CASE("a long network list answers as a scan of it would", "[limits][unit]") {
  // 3,000 networks of six prefix lengths in both families, against a plain scan, on addresses
  // inside, beside and far from them.
  std::vector<config::Network> list;
  std::mt19937 rng(7);
  const auto v4 = [&](unsigned prefix) {
    return std::to_string(rng() % 256) + "." + std::to_string(rng() % 256) + "." +
           std::to_string(rng() % 256) + "." + std::to_string(rng() % 256) + "/" +
           std::to_string(prefix);
  };
  const auto hex = [&] {
    char b[5];
    std::snprintf(b, sizeof b, "%x", static_cast<unsigned>(rng() % 65536));
    return std::string(b);
  };
  const auto v6 = [&](unsigned prefix) {
    return "2001:" + hex() + ":" + hex() + ":" + hex() + ":" + hex() + "::" + hex() + "/" +
           std::to_string(prefix);
  };
  for (int i = 0; i < 500; ++i) {
    for (unsigned p : {32u, 24u, 13u}) list.push_back(config::parse_network(v4(p)).value());
    for (unsigned p : {128u, 64u, 37u}) list.push_back(config::parse_network(v6(p)).value());
  }
  const config::NetworkSet set(list);
  const auto scan = [&](int family, const unsigned char* a) {
    return std::any_of(list.begin(), list.end(),
                       [&](const config::Network& n) { return n.contains(family, a); });
  };
  int inside = 0, checked = 0;
  for (const config::Network& n : list) {
    unsigned char a[16];
    std::copy(n.bytes, n.bytes + 16, a);
    for (int flip : {-1, static_cast<int>(n.prefix) - 1, static_cast<int>(n.prefix),
                     static_cast<int>(n.family == 4 ? 31 : 127)}) {
      unsigned char b[16];
      std::copy(a, a + 16, b);
      if (flip >= 0 && flip < (n.family == 4 ? 32 : 128)) b[flip / 8] ^= 0x80 >> (flip % 8);
      const bool expected = scan(n.family, b);
      CHECK(set.contains(n.family, b) == expected);
      inside += expected;
      ++checked;
    }
  }
  for (int i = 0; i < 2000; ++i) {  // elsewhere
    unsigned char a[16];
    for (auto& c : a) c = static_cast<unsigned char>(rng());
    const int family = i % 2 ? 4 : 6;
    CHECK(set.contains(family, a) == scan(family, a));
  }
  CHECK(checked == 12000);
  CHECK(inside > 6000);            // the networks' own addresses, and flips past their prefix
  CHECK(inside < checked);         // flips inside their prefix leave (most of) them
}

TEST_CASE("shared budgets: what clients spend here is reported, what they spent elsewhere charged",
          "[limits][unit]") {
  FakeClock fake;
  Metrics metrics("test");
  RateLimiter here(metrics, fake.clock()), there(Metrics::none(), fake.clock());
  const auto l = limits(1.0 / 3600, 5);
  here.configure(l, /*shared=*/true);
  there.configure(l, true);
  const HttpRequest search = request("GET", "/vks/v1/by-email/a%40b.example");
  const HttpRequest lookup = request("GET", "/vks/v1/by-keyid/116CE4D8CC373801");
  for (int i = 0; i < 3; ++i) CHECK_FALSE(here.admit(search));
  for (int i = 0; i < 2; ++i) CHECK_FALSE(here.admit(lookup));

  ClusterSpends reporter(here, metrics), receiver(there, metrics);
  const std::string report = reporter.report();
  CHECK(report == "hkpgw-spends 1 " + reporter.instance() + "\n192.0.2.7 2 3 0\n");
  CHECK(reporter.report().empty());  // taken: the next report is about what comes next
  HttpRequest post = request("POST", "/cluster/spends");
  post.body = report;
  const HttpResponse charged = receiver.receive(post);
  CHECK(charged.status == 200);
  CHECK(charged.payload() == "charged 1 clients\n");
  // The client has the cluster's budget left there: 5 - 3 searches, 5 - 2 lookups.
  for (int i = 0; i < 2; ++i) CHECK_FALSE(there.admit(search));
  CHECK(there.admit(search));
  for (int i = 0; i < 3; ++i) CHECK_FALSE(there.admit(lookup));
  CHECK(there.admit(lookup));
  CHECK(receiver.report() == "hkpgw-spends 1 " + receiver.instance() +
                                 "\n192.0.2.7 3 2 0\n");  // charges are not reported back

  // A replica that lists itself gets its own report: ignored, not charged twice.
  post.body = reporter.report();
  CHECK(post.body.empty());
  CHECK_FALSE(here.admit(search));
  post.body = reporter.report();
  CHECK(reporter.receive(post).payload() == "my own report: ignored\n");
  CHECK_FALSE(here.admit(search));  // its fifth: the fourth was counted here once, not twice
  CHECK(here.admit(search));

  // A debt is at most one burst deep: a lying report cannot lock a client out for days.
  post.body = "hkpgw-spends 1 0123456789abcdef\n198.51.100.9 0 1000000 0\n";
  CHECK(receiver.receive(post).status == 200);
  auto refused = there.admit(request("GET", "/vks/v1/by-email/a%40b.example", "198.51.100.9"));
  REQUIRE(refused);
  CHECK_THAT(std::string(refused->payload()), Contains("retry after 21600 s"));  // (1 + 5) tokens at 1/h
  CHECK_THAT(metrics.render({}), Contains("hkp_gateway_cluster_spends_total{direction=\"sent\"} 3"));
  CHECK_THAT(metrics.render({}),
             Contains("hkp_gateway_cluster_spends_total{direction=\"received\"} 2"));

  // Not shared: nothing is kept for a report.
  RateLimiter alone(Metrics::none(), fake.clock());
  alone.configure(l);
  CHECK_FALSE(alone.admit(search));
  CHECK(ClusterSpends(alone, metrics).report().empty());
}

TEST_CASE("a spend report that is not whole charges nothing", "[limits][unit]") {
  RateLimiter limiter;
  limiter.configure(limits(1.0 / 3600, 2), true);
  ClusterSpends spends(limiter, Metrics::none());
  HttpRequest post = request("POST", "/cluster/spends");
  const std::string head = "hkpgw-spends 1 0123456789abcdef\n";
  for (const std::string& bad :
       {std::string("nonsense\n"), std::string("hkpgw-spends 2 0123456789abcdef\n"),
        head + "192.0.2.7 0 2 0\n192.0.2.7 0 2\n", head + "192.0.2.7 0 -1 0\n",
        head + "192.0.2.7  0 2 0\n", head + "192.0.2.7 0 2000000 0\n",
        head + "<script> 0 2 0\n", head + std::string(65, 'a') + " 0 2 0\n",
        // Shaped like addresses, yet no client the limiter keys (issue 22: "/" and ":::::"
        // were charged): each would make an entry of its own and evict real clients'.
        head + "/ 0 2 0\n", head + "::::: 0 2 0\n", head + "10.0.0.01 0 2 0\n",
        head + "2001:DB8::/64 0 2 0\n", head + "2001:db8::1/64 0 2 0\n",
        head + "2001:db8:: 0 2 0\n", head + "::ffff:10.0.0.1/64 0 2 0\n"}) {
    INFO(bad);
    post.body = bad;
    const HttpResponse r = spends.receive(post);
    CHECK(r.status == 400);
    CHECK_THAT(std::string(r.payload()), Contains("Bad spend report: line "));
  }
  std::string many = head;
  for (int i = 0; i < 20001; ++i) {
    many += "10.0." + std::to_string(i / 256) + "." + std::to_string(i % 256) + " 0 1 0\n";
  }
  post.body = many;
  CHECK_THAT(std::string(spends.receive(post).payload()),
             Contains("line 20002: more than 20000 clients"));
  // The one good line of the third report was not charged: the client has both searches.
  const HttpRequest search = request("GET", "/vks/v1/by-email/a%40b.example");
  CHECK_FALSE(limiter.admit(search));
  CHECK_FALSE(limiter.admit(search));
  CHECK(limiter.admit(search));
  CHECK(limiter.tracked() == 1);
}
