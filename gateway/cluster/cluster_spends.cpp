#include "gateway/cluster/cluster_spends.hpp"

#include <cstdio>
#include <random>

#include "gateway/observe/log.hpp"
#include "gateway/net/peer_client.hpp"
#include "gateway/service/periodic.hpp"

namespace hkpgw::gateway {

namespace asio = boost::asio;

namespace {
constexpr auto kEvery = std::chrono::seconds(1);
}  // namespace

ClusterSpends::ClusterSpends(RateLimiter& limiter, Metrics& metrics)
    : limiter_(limiter),
      spends_(metrics.counter("cluster_spends_total",
                              "Client budget spends reported to the other replicas or charged "
                              "from their reports, by direction, in clients per report",
                              {"direction"})) {
  std::random_device rd;
  char buf[17];
  std::snprintf(buf, sizeof buf, "%08x%08x", rd(), rd());
  instance_ = buf;
}

std::string ClusterSpends::report() {
  const std::vector<ClientSpend> spent = limiter_.take_spent(kMaxReportClients);
  if (spent.empty()) return {};
  spends_.add({"sent"}, static_cast<double>(spent.size()));
  return format_spend_report(instance_, spent);
}

HttpResponse ClusterSpends::receive(const HttpRequest& req) {
  auto parsed = parse_spend_report(req.body);
  if (auto* problem = std::get_if<std::string>(&parsed)) {
    return text_response(400, "Bad spend report: " + *problem);
  }
  const SpendReport& report = std::get<SpendReport>(parsed);
  if (report.instance == instance_) return text_response(200, "my own report: ignored");
  for (const auto& s : report.spent) limiter_.charge(s.client, s.n);
  spends_.add({"received"}, static_cast<double>(report.spent.size()));
  return text_response(200, "charged " + std::to_string(report.spent.size()) + " clients");
}

asio::awaitable<void> ClusterSpends::send_report(const std::vector<config::ListenAddress>& peers,
                                                 const std::string& secret,
                                                 std::chrono::steady_clock::time_point& logged) {
  if (peers.empty()) co_return;
  const std::string body = report();
  if (body.empty()) co_return;
  // Short waits: a peer that is down must not hold up the next second's report.
  const UpstreamLimits limits{std::chrono::milliseconds(500), std::chrono::seconds(2), 4 << 10};
  for (const auto& peer : peers) {
    const PeerPost post{"/cluster/spends", "text/plain", body, secret};
    const PeerPush sent = co_await post_to_peer(peer, post, limits);
    const auto now = std::chrono::steady_clock::now();
    if (!sent.delivered() && now - logged >= std::chrono::minutes(1)) {
      logged = now;
      log::warn("cluster_spends_not_delivered",
                {{"replica", peer.text()},
                 {"status", std::to_string(sent.status)},
                 {"detail", sent.detail},
                 {"effect", "that second's spends are not charged there (this line at most "
                            "every minute)"}});
    }
  }
}

void ClusterSpends::start(asio::any_io_executor executor, SnapshotSource snapshots) {
  running_ = true;
  run_periodically(executor, kEvery, running_, "cluster_spends_failed",
                   [this, snapshots = std::move(snapshots)]() -> asio::awaitable<void> {
                     const auto snap = snapshots();
                     co_await send_report(snap->config->cluster.peers, snap->config->cluster.secret, logged_);
                   });
}

}  // namespace hkpgw::gateway
