#include "gateway/cluster/cluster.hpp"

#include <ctime>

#include "gateway/http/formats.hpp"
#include "gateway/observe/log.hpp"
#include "hkp/submission.hpp"

namespace hkpgw::gateway {

namespace asio = boost::asio;

namespace {

bool from_trusted(const Snapshot& snap, const HttpRequest& req) {
  return config::any_contains(snap.config->cluster.trusted, req.peer.family, req.peer.ip);
}

HttpResponse untrusted(const HttpRequest& req, std::string_view what) {
  return text_response(403, "Forbidden: " + req.peer.address +
                                " is not in cluster.trusted, so it may not " + std::string(what));
}

// A gateway with no [cluster] peers is in no cluster: nobody, trusted network or not, may push
// keys or charge budgets there (anything in cluster.trusted could otherwise lock clients out or
// push keys past the submission budget, with no replica configured to send them).
HttpResponse no_cluster(std::string_view what) {
  return text_response(403, "Forbidden: this gateway has no [cluster] peers, so nobody may " +
                                std::string(what) + " here");
}

HttpResponse not_a_peer(std::string_view why) {
  HttpResponse r = text_response(401, "Unauthorized: not a replica of this cluster: " +
                                          std::string(why));
  r.set("WWW-Authenticate", "HKPGW-HMAC");
  return r;
}

}  // namespace

Cluster::Cluster(AddService& adds, RateLimiter& limiter, WorkPool& pool, Metrics& metrics,
                 SnapshotSource snapshots)
    : adds_(adds), pool_(pool), snapshots_(std::move(snapshots)), spends_(limiter, metrics),
      pushes_(metrics.counter("cluster_pushes_total",
                              "Submitted keys pushed to the other replicas ([cluster] peers), "
                              "by result",
                              {"result"})) {}

std::vector<std::string> Cluster::replicas(const config::Config& cfg) const {
  std::vector<std::string> out;
  for (const auto& p : cfg.cluster.peers) out.push_back(p.text());
  return out;
}

bool Cluster::knows(const config::Config& cfg, std::string_view replica) const {
  for (const auto& p : cfg.cluster.peers) {
    if (p.text() == replica) return true;
  }
  return false;
}

asio::awaitable<PeerPush> Cluster::push(std::string_view replica, std::string_view packets,
                                        const Snapshot& snap) {
  const config::ListenAddress* to = nullptr;
  for (const auto& p : snap.config->cluster.peers) {
    if (p.text() == replica) to = &p;
  }
  PeerPush pushed;
  if (!to) {
    pushed.detail = "not a [cluster] peer any more";
    co_return pushed;
  }
  const UpstreamLimits limits{snap.config->upstreams.connect_timeout,
                              snap.config->upstreams.request_timeout, 64 << 10};
  pushed = co_await push_to_peer(*to, packets, snap.config->cluster.secret, limits);
  pushes_.add({pushed.delivered() ? "delivered" : pushed.refused() ? "refused" : "failed"});
  co_return pushed;
}

std::optional<HttpResponse> Cluster::gate(const HttpRequest& req, std::string_view what) const {
  const auto snap = snapshots_();
  if (snap->config->cluster.peers.empty()) return no_cluster(what);
  if (!from_trusted(*snap, req)) return untrusted(req, what);
  if (!parse_cluster_authorization(req.authorization)) {  // before any body byte
    return not_a_peer("the request carries no HKPGW-HMAC authorization");
  }
  return std::nullopt;
}

// The MAC over the request as it was read, its time and its nonce (cluster_auth.hpp): an address
// in cluster.trusted is not enough to charge budgets or push keys.
std::optional<HttpResponse> Cluster::check_peer(const Snapshot& snap, const HttpRequest& req) {
  const auto why = check_cluster_request(snap.config->cluster.secret, req.authorization,
                                         req.method, req.target, req.body,
                                         static_cast<std::uint64_t>(std::time(nullptr)), replays_);
  if (!why) return std::nullopt;
  log::warn("cluster_request_refused", {{"peer", req.peer.address}, {"target", req.target},
                                        {"reason", *why}});
  return not_a_peer(*why);
}

void Cluster::add_routes(AdminRouter& router) {
  router.add(
      "POST", "/cluster/keys", [this](const HttpRequest& r) { return gate(r, "push keys"); },
      [this](const HttpRequest& r) { return merge_pushed(r); });
  router.add(
      "POST", "/cluster/spends", [this](const HttpRequest& r) { return gate(r, "report spends"); },
      [this](const HttpRequest& r) { return charge_spends(r); });
}

void Cluster::start(asio::any_io_executor executor) {
  spends_.start(std::move(executor), snapshots_);
}

// POST /cluster/spends: another replica's report of what its clients spent. The largest one
// takes milliseconds to parse and charge (bench_limits): the work pool's, like keys.
asio::awaitable<HttpResponse> Cluster::charge_spends(const HttpRequest& req) {
  if (auto refused = check_peer(*snapshots_(), req)) co_return std::move(*refused);
  auto job = [this, &req] { return spends_.receive(req); };
  std::optional<HttpResponse> charged = co_await pool_.try_run(job);
  if (!charged) {
    HttpResponse busy = text_response(503, "Busy verifying keys: this report is not charged");
    busy.set("Retry-After", "1");
    co_return busy;
  }
  co_return std::move(*charged);
}

// POST /cluster/keys: another replica's push. What it can do (merge public keys that are
// verified here as any submission is) is what /pks/add allows anyone, less the forwarding, and
// without the submission budget.
asio::awaitable<HttpResponse> Cluster::merge_pushed(const HttpRequest& req) {
  auto snap = snapshots_();
  if (auto refused = check_peer(*snap, req)) co_return std::move(*refused);
  auto sub = hkp::parse_submission(req.content_type, req.body, req.query());
  if (!sub) co_return text_response(sub.error().status, sub.error().detail);
  const hkp::Submission& submission = *sub;
  AddService::Submitted done = co_await adds_.submit(submission, req, std::move(snap), true);
  if (auto* refused = std::get_if<Refusal>(&done)) co_return refusal_text(*refused);
  std::string text;
  for (const auto& k : std::get<std::vector<AddService::AddedKey>>(done)) {
    text += k.fingerprint + " " + cache::change_name(k.change) + "\n";
  }
  HttpResponse r = text_response(200, "");
  r.body = std::move(text);
  co_return r;
}

}  // namespace hkpgw::gateway
