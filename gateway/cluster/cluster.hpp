// The cluster ([cluster], docs/contract.md): replicas behind one balancer keep each other's
// caches and budgets in step, and this module is all of it.
//  - Keys: as Replicas (service/replicas.hpp) it names the replicas every key a client submits
//    goes to and pushes it (net/peer_client.hpp: one signed POST to the peer's admin listener);
//    AddService queues and retries the pushes with its forwards.
//  - POST /cluster/keys on the admin listener: another replica's push, merged like a submission
//    (AddService::submit, from_replica: neither forwarded nor pushed on).
//  - POST /cluster/spends: another replica's report of what its clients spent, charged to the
//    rate limiter on the work pool; the reports this replica sends come from ClusterSpends.
// Who may call /cluster/*: only with peers configured, only from cluster.trusted networks, only
// with an HMAC keyed with the cluster's secret, fresh and never seen before
// (net/cluster_auth.hpp). Plain HTTP is enough for what is sent: public keys the receiver
// verifies, and budgets; nothing on the path can forge, alter or replay a request.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <string>
#include <vector>

#include "gateway/cluster/cluster_spends.hpp"
#include "gateway/http/admin.hpp"
#include "gateway/http/rate_limit.hpp"
#include "gateway/net/cluster_auth.hpp"
#include "gateway/observe/stats.hpp"
#include "gateway/service/add_service.hpp"
#include "gateway/service/replicas.hpp"
#include "gateway/service/work_pool.hpp"

namespace hkpgw::gateway {

class Cluster final : public Replicas {
 public:
  Cluster(AddService& adds, RateLimiter& limiter, WorkPool& pool, Metrics& metrics,
          SnapshotSource snapshots);

  // Replicas: the configured peers, by "host:port".
  std::vector<std::string> replicas(const config::Config& cfg) const override;
  bool knows(const config::Config& cfg, std::string_view replica) const override;
  boost::asio::awaitable<PeerPush> push(std::string_view replica, std::string_view packets,
                                        const Snapshot& snap) override;

  // /cluster/keys and /cluster/spends, with their gate.
  void add_routes(AdminRouter& router);
  // The spend reports to the peers, every second, until stop().
  void start(boost::asio::any_io_executor executor);
  void stop() { spends_.stop(); }

 private:
  // What the head of a /cluster/ request must show before its body is read.
  std::optional<HttpResponse> gate(const HttpRequest& req, std::string_view what) const;
  // The MAC over the whole request (its body read by now).
  std::optional<HttpResponse> check_peer(const Snapshot& snap, const HttpRequest& req);
  boost::asio::awaitable<HttpResponse> merge_pushed(const HttpRequest& req);
  boost::asio::awaitable<HttpResponse> charge_spends(const HttpRequest& req);

  AddService& adds_;
  WorkPool& pool_;
  SnapshotSource snapshots_;
  ClusterSpends spends_;
  ReplayGuard replays_;    // /cluster/* requests already taken
  CounterFamily pushes_;   // cluster_pushes_total{result}: delivered, refused, failed
};

}  // namespace hkpgw::gateway
