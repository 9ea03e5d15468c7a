// The rate limiter's costs: heap bytes per tracked client (IPv4 and IPv6 /64 keys), and the
// time of one admit() for a tracked client and for a new one that evicts another. Prints figures.
#include <malloc.h>

#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

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

}  // namespace

int main() {
  per_client("IPv4 clients", v4);
  per_client("IPv6 /64 clients", v6);
}
