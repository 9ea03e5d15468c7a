// Per-client rate limits ([limits], docs/contract.md): a token bucket per client address (IPv4
// address, IPv6 /64: HttpRequest::peer.client) for each budget a route names (routes.hpp: key
// lookups, searches, submissions). A request over its budget gets 429 with Retry-After (the
// seconds until a token is back) and one line; never 503 (dirmngr retries it) nor 502. Clients
// in `exempt` networks are never limited; clients in `deny` networks (a harvester the operator
// banned) get 403 and one line for every request, whatever it asks, exempt or not. Both lists
// cost a few hash probes however long they are (config::NetworkSet).
//
// The HKP server asks admit() before anything else, the reused-answer path included (a limit
// the cached hit path skipped would be no limit). Cost per limited request: a scan of the
// target, one hash and one short lock of one of 16 shards.
//
// Bounded: at most limits.max_clients clients are tracked. A full shard first forgets a client
// whose buckets have refilled (it is indistinguishable from a new one), else one at random; so
// many addresses cost memory up to the bound and then only reset some strangers' budgets.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "config/config.hpp"
#include "gateway/http/routes.hpp"
#include "gateway/net/http_message.hpp"
#include "gateway/observe/metrics.hpp"
#include "hkp/budget.hpp"

namespace hkpgw::gateway {

// What one client spent at this replica since the last report (the cluster shares budgets:
// gateway/cluster/).
struct ClientSpend {
  std::string client;
  std::array<std::uint32_t, 3> n;  // tokens taken: key lookups, searches, submissions
  friend bool operator==(const ClientSpend&, const ClientSpend&) = default;
};

class RateLimiter {
 public:
  using Clock = std::function<std::chrono::steady_clock::time_point()>;
  static constexpr std::size_t kShards = 16;

  explicit RateLimiter(Metrics& metrics = Metrics::none(),
                       Clock now = [] { return std::chrono::steady_clock::now(); });

  // Takes the limits of a (re)loaded config; buckets keep their tokens, capped at the new burst.
  // `shared`: the budgets are the cluster's ([cluster] peers): what clients spend here is kept
  // for take_spent(), so the other replicas charge it too.
  void configure(const config::LimitsConfig& limits, bool shared = false);
  // A whole config's: its [limits], shared when it names [cluster] peers.
  void configure(const config::Config& cfg) { configure(cfg.limits, !cfg.cluster.peers.empty()); }
  // Nothing when `request` may go on; else the 403 or 429 to answer. `budget`: what a request
  // spends (asked only for clients neither denied nor exempt), by default its route's.
  using BudgetOf = hkp::Budget (*)(const HttpRequest&);
  std::optional<HttpResponse> admit(const HttpRequest& request, BudgetOf budget = &budget_of);
  // Clients tracked now (all shards).
  std::size_t tracked() const { return tracked_.load(); }

  // Sharing budgets across replicas (ClusterSpends, gateway/cluster/cluster_spends.hpp).
  // What clients spent here since the last call, for at most `max_clients` clients (a look at
  // every tracked client, shard by shard).
  std::vector<ClientSpend> take_spent(std::size_t max_clients);
  // What a client spent at another replica: taken from its buckets here too, below zero if need
  // be (at most one burst deep), so its next requests here wait for the cluster's budget.
  void charge(const std::string& client, const std::array<std::uint32_t, 3>& n);

 private:
  struct Client {
    float tokens[3];  // key lookups, searches, submissions
    // Spent here since the last report (shared budgets only); counted in place, so sharing
    // costs a spend no allocation.
    std::uint16_t unreported[3];
    std::chrono::steady_clock::time_point last;
  };
  struct Shard {
    std::mutex mutex;
    std::unordered_map<std::string, Client> clients;
  };
  struct Settings {
    config::LimitsConfig limits;
    config::NetworkSet exempt, deny;
    bool shared = false;
  };
  // The client's entry (made, evicting another at capacity), its buckets refilled to `now`.
  // Called with the shard's lock held.
  Client& touch(Shard& shard, const std::string& client, const config::LimitsConfig& limits,
                std::chrono::steady_clock::time_point now);
  // Seconds to wait, or 0 when the request may go on (and a token is taken).
  double spend(const std::string& client, int budget, const config::LimitsConfig& limits,
               bool shared);

  // Its own metrics (observe/stats.hpp).
  CounterFamily limited_;  // rate_limited_total{budget}
  GaugeFamily clients_;    // rate_limit_clients
  CounterFamily denied_;   // denied_total
  Clock now_;
  std::atomic<std::shared_ptr<const Settings>> settings_;
  std::array<Shard, kShards> shards_;
  std::atomic<std::size_t> tracked_{0};
};

}  // namespace hkpgw::gateway
