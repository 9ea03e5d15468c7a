// Budgets shared by the replicas of a cluster ([cluster] peers, docs/contract.md). With peers
// configured, [limits] are the cluster's: every second each replica sends what its clients
// spent (RateLimiter::take_spent) to every peer's POST /cluster/spends, and charges what the
// peers send it (RateLimiter::charge). A client spreading its requests over the replicas (as the
// balancer's hashing on the key does) gets the cluster's budget, not N times it, give or take
// what it spends in the second before the others hear of it.
//
// Best effort by design: a report a peer does not take is not sent again (the next second's
// report is about the next second). A report names at most 20,000 clients; a replica's own
// report (it lists itself among the peers) is recognised by its instance and ignored. Clients
// past 20,000 in one second wait for the next report.
//
// The report's wire form: spend_report.hpp.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <atomic>
#include <chrono>
#include <string>
#include <vector>

#include "gateway/http/rate_limit.hpp"
#include "gateway/cluster/spend_report.hpp"
#include "gateway/net/http_message.hpp"
#include "gateway/observe/metrics.hpp"
#include "gateway/upstream/snapshot.hpp"

namespace hkpgw::gateway {

class ClusterSpends {
 public:
  ClusterSpends(RateLimiter& limiter, Metrics& metrics);

  // The report of what clients spent, for peers; "" when nobody spent anything.
  std::string report();
  // POST /cluster/spends (its sender already found trusted): 200 with one line, or 400 naming
  // the first line that is not a report's; nothing is charged from a report that is not whole.
  // Thread-safe; the admin handler runs it on the work pool.
  HttpResponse receive(const HttpRequest& request);

  // Every second, the report goes to every peer of the current config. Runs until stop().
  void start(boost::asio::any_io_executor executor, SnapshotSource snapshots);
  void stop() { running_ = false; }

  const std::string& instance() const { return instance_; }

 private:
  // One second's report to every peer; `logged`: when a failure was last logged.
  boost::asio::awaitable<void> send_report(const std::vector<config::ListenAddress>& peers,
                                           const std::string& secret,
                                           std::chrono::steady_clock::time_point& logged);

  RateLimiter& limiter_;
  CounterFamily spends_;  // cluster_spends_total{direction}
  std::string instance_;  // random, per process: a replica knows its own reports
  std::atomic<bool> running_{false};
  std::chrono::steady_clock::time_point logged_{};  // a peer down: a line a minute, not a second
};

}  // namespace hkpgw::gateway
