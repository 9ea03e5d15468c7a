// Upstream-fleet and hot-path figures, measured end to end against the real binary and real-HTTPS
// test keyservers on loopback (the same actors as the integration tests). Prints a table; asserts
// nothing. Every loop is bounded.
//
//   bench_fleet            (run by `make bench`, after the test fixtures exist)
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <future>
#include <thread>

#include "bench_util.hpp"
#include "support/actors.hpp"

using namespace hkpgw::test;
using hkpgw::bench::Clock;

namespace {

using hkpgw::bench::ms_since;
using hkpgw::bench::Stats;

std::string missing_fpr(int n) {
  std::string s = std::to_string(n);
  return std::string(40 - s.size(), 'B') + s;
}
std::string get_fpr(const std::string& fpr) { return "/pks/lookup?op=get&search=0x" + fpr; }

// Server-side durations (duration_ms in the access log) of lines containing `marker`.
Stats server_side(const Gateway& gw, const std::string& marker) {
  Stats s;
  std::istringstream in(gw.log());
  for (std::string line; std::getline(in, line);) {
    if (line.find("event=request") == std::string::npos || line.find(marker) == std::string::npos) continue;
    s.v.push_back(std::stod(field(line, "duration_ms")));
  }
  return s;
}

void row(const char* what, const std::string& value) { std::printf("  %-58s %s\n", what, value.c_str()); }
std::string fmt(double ms) {
  char b[32];
  std::snprintf(b, sizeof b, "%.3f ms", ms);
  return b;
}

void hot_path() {
  std::puts("cached op=get (hot path), 2000 sequential HTTP/1.0 requests:");
  TempDir dir;
  TestKeyserver ks(dir, "ks");
  Gateway gw{GatewayConfig(dir).upstreams({{"ks", ks.url()}})};
  const std::string target = get_fpr(fixture("ALICE_FPR"));
  gw.get(target);
  Stats client;
  for (int i = 0; i < 2000; ++i) {
    const auto t = Clock::now();
    gw.get(target);
    client.v.push_back(ms_since(t));
  }
  Stats server = server_side(gw, "cache=hit");
  row("in the gateway p50 / p90 / p99", fmt(server.pct(50)) + " / " + fmt(server.pct(90)) + " / " + fmt(server.pct(99)));
  row("client round trip incl. connect p50 / p99", fmt(client.pct(50)) + " / " + fmt(client.pct(99)));
}

void failover() {
  std::puts("added latency of a failover (misses, 200 each):");
  TempDir dir;
  TestKeyserver dead(dir, "dead");
  TestKeyserver alive(dir, "alive");
  dead.stop();  // connection refused
  const std::string probes = "probe_interval = \"200ms\"\nunhealthy_threshold = 2\n";
  Stats alone, before, known;
  {
    Gateway gw{GatewayConfig(dir).upstreams({{"alive", alive.url()}}).upstreams_table(probes)};
    for (int i = 0; i < 200; ++i) gw.get(get_fpr(missing_fpr(i)));
    alone = server_side(gw, "cache=miss");
  }
  {
    TempDir d2;
    Gateway gw{GatewayConfig(d2)
                   .upstreams({{"dead", dead.url()}, {"alive", alive.url()}})
                   .upstreams_table("probe_interval = \"1h\"\nunhealthy_threshold = 1000\n")};
    for (int i = 0; i < 200; ++i) gw.get(get_fpr(missing_fpr(1000 + i)));
    before = server_side(gw, "cache=miss");
  }
  {
    TempDir d3;
    Gateway gw{GatewayConfig(d3)
                   .upstreams({{"dead", dead.url()}, {"alive", alive.url()}})
                   .upstreams_table(probes)};
    gw.process().wait_for("upstream=dead state=unhealthy", std::chrono::seconds(10));
    for (int i = 0; i < 200; ++i) gw.get(get_fpr(missing_fpr(2000 + i)));
    known = server_side(gw, "cache=miss");
  }
  // A default that swallows requests (blackholed, hung) costs request_timeout each until noticed,
  // or hedge_after with hedging on. Five keys the other upstream has (a 404 from it would not
  // end the wait: the hung default might still have the key); slow by design.
  const std::vector<std::string> five = {fixture("ALICE_FPR"), fixture("BOB_FPR"), fixture("CAROL_FPR"),
                                         fixture("DAVE_FPR"), fixture("ERIN_FPR")};
  Stats hung_plain, hung_hedged;
  {
    TempDir d4;
    TestKeyserver hung(d4, "hung", "server", "hang");
    const std::string no_notice = "probe_interval = \"1h\"\nunhealthy_threshold = 1000\nrequest_timeout = \"1s\"\n";
    {
      Gateway gw{GatewayConfig(d4)
                     .upstreams({{"hung", hung.url()}, {"alive", alive.url()}})
                     .upstreams_table(no_notice)};
      for (const auto& k : five) gw.get(get_fpr(k));
      hung_plain = server_side(gw, "cache=miss");
    }
    TempDir d5;
    Gateway gw{GatewayConfig(d5)
                   .upstreams({{"hung", hung.url()}, {"alive", alive.url()}})
                   .upstreams_table(no_notice + "hedge_after = \"100ms\"\n")};
    for (const auto& k : five) gw.get(get_fpr(k));
    hung_hedged = server_side(gw, "cache=miss");
  }
  row("healthy upstream alone, p50", fmt(alone.pct(50)));
  row("dead default not yet noticed (refused, then next), p50", fmt(before.pct(50)));
  row("dead default known unhealthy (skipped), p50", fmt(known.pct(50)));
  row("added by a known-dead default, p50", fmt(known.pct(50) - alone.pct(50)));
  row("hanging default not yet noticed, request_timeout 1s, p50", fmt(hung_plain.pct(50)));
  row("the same with hedge_after = 100ms, p50", fmt(hung_hedged.pct(50)));
}

void time_to_notice() {
  std::puts("time to notice a dead upstream (probe_interval 1s, unhealthy_threshold 3):");
  for (const std::string how : {"stopped (refused)", "hanging (probe_timeout 1s)"}) {
    TempDir dir;
    TestKeyserver ks(dir, "ks");
    TestKeyserver other(dir, "other");
    Gateway gw{
        GatewayConfig(dir)
            .upstreams({{"ks", ks.url()}, {"other", other.url()}})
            .upstreams_table(
                "probe_interval = \"1s\"\nprobe_timeout = \"1s\"\nunhealthy_threshold = 3\n")};
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    const auto t = Clock::now();
    if (how.starts_with("stopped")) ks.stop();
    else ks.set_mode("hang");
    const bool seen = gw.process().wait_for("upstream=ks state=unhealthy", std::chrono::seconds(15)).has_value();
    row(("no traffic, " + how).c_str(), seen ? fmt(ms_since(t)) : "not within 15 s");
  }
  {
    TempDir dir;
    TestKeyserver ks(dir, "ks");
    TestKeyserver other(dir, "other");
    Gateway gw{GatewayConfig(dir)
                   .upstreams({{"ks", ks.url()}, {"other", other.url()}})
                   .upstreams_table("probe_interval = \"1h\"\nunhealthy_threshold = 3\n")};
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    const auto t = Clock::now();
    ks.stop();
    int n = 0;
    while (gw.log().find("upstream=ks state=unhealthy") == std::string::npos && n < 1000) {
      gw.get(get_fpr(missing_fpr(5000 + n++)));
    }
    row("live traffic only (sequential misses), stopped", fmt(ms_since(t)) + " after " + std::to_string(n) + " requests");
  }
}

void burst() {
  std::puts("a burst of identical misses (upstream answers after 200 ms):");
  for (int clients : {50, 200}) {
    TempDir dir;
    TestKeyserver ks(dir, "ks");
    ks.set_mode("slow", 200);
    Gateway gw{GatewayConfig(dir).upstreams({{"ks", ks.url()}})};
    const std::string target = get_fpr(fixture("BOB_FPR"));
    std::vector<std::future<int>> f;
    const auto t = Clock::now();
    for (int i = 0; i < clients; ++i) {
      f.push_back(std::async(std::launch::async, [&] { return gw.get(target).status; }));
    }
    int ok = 0;
    for (auto& x : f) ok += x.get() == 200;
    const double wall = ms_since(t);
    row((std::to_string(clients) + " concurrent clients: upstream requests").c_str(),
        std::to_string(ks.count("gets")) + " (" + std::to_string(ok) + " answered 200, all within " + fmt(wall) + ")");
  }
}

}  // namespace

int main() {
  hot_path();
  failover();
  time_to_notice();
  burst();
  return 0;
}
