// The rate limiter's costs: heap bytes per tracked client (IPv4 and IPv6 /64 keys), the time of
// one admit() for a tracked client and for a new one that evicts another, and what a long deny
// list adds to an exempt client's admit(). Prints figures.
#include <malloc.h>

#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "gateway/cluster/cluster_spends.hpp"
#include "gateway/http/rate_limit.hpp"

using namespace hkpgw;
using namespace hkpgw::gateway;

namespace {

HttpRequest lookup(const std::string& client) {
  HttpRequest r;
  r.method = "GET";
  r.target = "/pks/lookup?op=get&options=mr&search=0xA2D09A19150279F966C7DE0E116CE4D8CC373801";
  r.peer.address = "192.0.2.1";
  r.peer.family = 4;
  r.peer.ip[0] = 192;
  r.peer.ip[2] = 2;
  r.peer.ip[3] = 1;
  r.peer.client = client;
  return r;
}

std::string v4(int i) {
  return "10." + std::to_string((i >> 16) & 255) + "." + std::to_string((i >> 8) & 255) + "." +
         std::to_string(i & 255);
}
std::string v6(int i) {
  return "2001:db8:" + std::to_string(i >> 16) + ":" + std::to_string(i & 0xffff) + "::/64";
}

void per_client(const char* what, std::string (*name)(int)) {
  constexpr int kClients = 100000;
  std::vector<HttpRequest> requests;
  for (int i = 0; i < kClients; ++i) requests.push_back(lookup(name(i)));
  const std::size_t before = mallinfo2().uordblks;
  {
    RateLimiter limiter;
    config::LimitsConfig l;
    l.max_clients = kClients * 2;
    l.exempt.clear();
    limiter.configure(l);
    for (const auto& r : requests) (void)limiter.admit(r);
    const std::size_t after = mallinfo2().uordblks;
    std::printf("%-28s %8.1f bytes per tracked client (%d clients, %zu tracked)\n", what,
                static_cast<double>(after - before) / kClients, kClients, limiter.tracked());
    const auto t0 = std::chrono::steady_clock::now();
    for (int round = 0; round < 10; ++round) {
      for (const auto& r : requests) (void)limiter.admit(r);
    }
    const std::chrono::duration<double, std::nano> ns = std::chrono::steady_clock::now() - t0;
    std::printf("%-28s %8.1f ns per admit of a tracked client\n", what,
                ns.count() / (10.0 * kClients));
    // Shared budgets ([cluster] peers): each spend is also counted for the next report, which
    // a second's loop takes as a whole, as ClusterSpends does.
    limiter.configure(l, /*shared=*/true);
    const auto s0 = std::chrono::steady_clock::now();
    for (int round = 0; round < 10; ++round) {
      for (const auto& r : requests) (void)limiter.admit(r);
      (void)limiter.take_spent(kClients);
    }
    const std::chrono::duration<double, std::nano> sns = std::chrono::steady_clock::now() - s0;
    std::printf("%-28s %8.1f ns per admit of a tracked client, budgets shared (report included)\n",
                what, sns.count() / (10.0 * kClients));
  }
  RateLimiter full;
  config::LimitsConfig small;
  small.max_clients = 1600;
  small.exempt.clear();
  full.configure(small);
  const auto t0 = std::chrono::steady_clock::now();
  for (const auto& r : requests) (void)full.admit(r);
  const std::chrono::duration<double, std::nano> ns = std::chrono::steady_clock::now() - t0;
  std::printf("%-28s %8.1f ns per admit of a new client into a full table (%zu tracked)\n", what,
              ns.count() / kClients, full.tracked());
}

// An exempt client's admit() (the cheapest path, so the one a list's cost shows most on) with a
// deny list of `n` networks: /24s and /64s, as a list of harvesters' networks would be.
void deny_list(int n) {
  config::LimitsConfig l;
  l.exempt = {config::parse_network("192.0.2.0/24").value()};
  for (int i = 0; i < n; ++i) {
    char v6net[48];
    std::snprintf(v6net, sizeof v6net, "2001:db8:%x:%x::/64", i >> 16, i & 0xffff);
    l.deny.push_back(config::parse_network(i % 2 ? v4(i) + "/24" : v6net).value());
  }
  RateLimiter limiter;
  limiter.configure(l);
  const HttpRequest r = lookup("192.0.2.1");
  constexpr int kRounds = 2'000'000;
  int refused = 0;
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < kRounds; ++i) refused += limiter.admit(r).has_value();
  const std::chrono::duration<double, std::nano> ns = std::chrono::steady_clock::now() - t0;
  std::printf("deny list of %7d networks %8.1f ns per admit of an exempt client (%d refused)\n", n,
              ns.count() / kRounds, refused);
}

}  // namespace

// The largest report a peer may send (20,000 clients), parsed and charged, as the admin
// listener's thread does it.
void biggest_report() {
  RateLimiter limiter;
  config::LimitsConfig l;
  l.max_clients = 100000;
  l.exempt.clear();
  limiter.configure(l, /*shared=*/true);
  ClusterSpends spends(limiter, Metrics::none());
  std::vector<ClientSpend> spent;
  for (int i = 0; i < static_cast<int>(kMaxReportClients); ++i) spent.push_back({v4(i), {3, 1, 0}});
  HttpRequest post = lookup("192.0.2.1");
  post.method = "POST";
  post.body = format_spend_report("0123456789abcdef", spent);
  constexpr int kRounds = 20;
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < kRounds; ++i) (void)spends.receive(post);
  const std::chrono::duration<double, std::milli> ms = std::chrono::steady_clock::now() - t0;
  std::printf("spend report of %zu clients (%zu bytes): %.2f ms to parse and charge\n",
              spent.size(), post.body.size(), ms.count() / kRounds);
}

int main() {
  per_client("IPv4 clients", v4);
  per_client("IPv6 /64 clients", v6);
  biggest_report();
  for (int n : {0, 2, 4, 5, 1000, 100000}) deny_list(n);
}
