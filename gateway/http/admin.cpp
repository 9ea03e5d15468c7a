#include "gateway/http/admin.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <cctype>
#include <ctime>

#include <openssl/crypto.h>

#include "cache/record.hpp"
#include "gateway/http/formats.hpp"
#include "gateway/http/stats.hpp"
#include "gateway/observe/log.hpp"
#include "gateway/service/cache_writer.hpp"
#include "hkp/lookup.hpp"
#include "hkp/submission.hpp"

namespace hkpgw::gateway {

namespace asio = boost::asio;

namespace {

std::string json_list(const std::vector<std::string>& v) {
  std::string out = "[";
  for (std::size_t i = 0; i < v.size(); ++i) out += (i ? "," : "") + json_string(v[i]);
  return out + "]";
}

HttpResponse json(unsigned status, std::string body) {
  HttpResponse r;
  r.status = status;
  r.content_type = "application/json";
  r.body = std::move(body) + "\n";
  return r;
}

HttpResponse json_error(unsigned status, std::string_view message) {
  return json(status, "{\"error\":" + json_string(message) + "}");
}

bool authorized(const std::string& token, const HttpRequest& req) {
  constexpr std::string_view kBearer = "Bearer ";
  if (!req.authorization.starts_with(kBearer)) return false;
  const std::string_view given = std::string_view(req.authorization).substr(kBearer.size());
  return given.size() == token.size() &&
         CRYPTO_memcmp(given.data(), token.data(), given.size()) == 0;  // constant time
}

std::string upstreams_json(const Snapshot& snap) {
  std::string out = "{\"upstreams\":[";
  for (std::size_t i = 0; i < snap.upstreams.size(); ++i) {
    const auto& u = *snap.upstreams[i];
    const auto h = u.health().view();
    out += std::string(i ? "," : "") + "{\"name\":" + json_string(u.name()) +
           ",\"url\":" + json_string(u.config().url) +
           ",\"default\":" + (u.name() == snap.config->upstreams.default_name ? "true" : "false") +
           ",\"healthy\":" + (h.healthy ? "true" : "false") +
           ",\"consecutive_failures\":" + std::to_string(h.consecutive_failures) +
           ",\"consecutive_successes\":" + std::to_string(h.consecutive_successes) +
           ",\"probes\":" + std::to_string(h.probes) +
           ",\"probe_failures\":" + std::to_string(h.probe_failures) +
           ",\"last_error\":" + json_string(h.last_error) +
           ",\"connections\":" + std::to_string(u.open_connections()) +
           ",\"tls_resumptions\":" + std::to_string(u.resumed_handshakes()) + "}";
  }
  return out + "]}";
}

}  // namespace

// DNS rebinding: a page on evil.example that makes its own name resolve to 127.0.0.1 reaches
// this listener from the victim's browser with "Host: evil.example". An IP literal or localhost
// (what probes, Prometheus and curl send) cannot be rebound; other names must be listed.
bool host_allowed(std::string_view host, const std::vector<std::string>& allowed) {
  if (host.empty()) return true;  // HTTP/1.0 without Host: no browser sends that
  std::string name;
  if (host.front() == '[') {
    const auto close = host.find(']');
    if (close == std::string_view::npos) return false;
    name = std::string(host.substr(1, close - 1));
    in6_addr a6{};
    return inet_pton(AF_INET6, name.c_str(), &a6) == 1;
  }
  name = std::string(host.substr(0, host.rfind(':')));
  for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  in_addr a4{};
  if (inet_pton(AF_INET, name.c_str(), &a4) == 1 || name == "localhost") return true;
  return std::any_of(allowed.begin(), allowed.end(), [&](const std::string& a) {
    std::string l = a;
    for (auto& c : l) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return l == name;
  });
}

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

// The MAC over the request as it was read, its time and its nonce (cluster_auth.hpp): an address
// in cluster.trusted is not enough to charge budgets or push keys.
std::optional<HttpResponse> check_peer(AdminContext& ctx, const Snapshot& snap,
                                       const HttpRequest& req) {
  const auto why = check_cluster_request(snap.config->cluster.secret, req.authorization,
                                         req.method, req.target, req.body,
                                         static_cast<std::uint64_t>(std::time(nullptr)),
                                         ctx.replays);
  if (!why) return std::nullopt;
  log::warn("cluster_request_refused", {{"peer", req.peer.address}, {"target", req.target},
                                        {"reason", *why}});
  return not_a_peer(*why);
}

// POST /cluster/spends: another replica's report of what its clients spent. The largest one
// takes milliseconds to parse and charge (bench_limits): the work pool's, like keys.
asio::awaitable<HttpResponse> charge_spends(AdminContext& ctx, const HttpRequest& req) {
  if (req.method != "POST") {
    HttpResponse r = text_response(405, "Method not allowed: POST reports to /cluster/spends");
    r.set("Allow", "POST");
    co_return r;
  }
  if (ctx.snapshots()->config->cluster.peers.empty()) co_return no_cluster("report spends");
  if (!from_trusted(*ctx.snapshots(), req) || ctx.spends == nullptr || ctx.pool == nullptr) {
    co_return untrusted(req, "report spends");
  }
  if (auto refused = check_peer(ctx, *ctx.snapshots(), req)) co_return std::move(*refused);
  auto job = [&ctx, &req] { return ctx.spends->receive(req); };
  std::optional<HttpResponse> charged = co_await ctx.pool->try_run(job);
  if (!charged) {
    HttpResponse busy = text_response(503, "Busy verifying keys: this report is not charged");
    busy.set("Retry-After", "1");
    co_return busy;
  }
  co_return std::move(*charged);
}

// POST /cluster/keys: another replica's push. Trusted by its network, not by a token: what it
// can do (merge public keys that are verified here as any submission is) is what /pks/add
// allows anyone, less the forwarding, and without the submission budget.
asio::awaitable<HttpResponse> merge_pushed(AdminContext& ctx, const HttpRequest& req) {
  if (req.method != "POST") {
    HttpResponse r = text_response(405, "Method not allowed: POST keys to /cluster/keys");
    r.set("Allow", "POST");
    co_return r;
  }
  auto snap = ctx.snapshots();
  if (snap->config->cluster.peers.empty()) co_return no_cluster("push keys");
  if (!from_trusted(*snap, req) || ctx.adds == nullptr) co_return untrusted(req, "push keys");
  if (auto refused = check_peer(ctx, *snap, req)) co_return std::move(*refused);
  auto sub = hkp::parse_submission(req.content_type, req.body, req.query());
  if (!sub) co_return text_response(sub.error().status, sub.error().detail);
  const hkp::Submission& submission = *sub;
  AddService::Submitted done = co_await ctx.adds->submit(submission, req, std::move(snap), true);
  if (auto* refused = std::get_if<Refusal>(&done)) co_return refusal_text(*refused);
  std::string text;
  for (const auto& k : std::get<std::vector<AddService::AddedKey>>(done)) {
    text += k.fingerprint + " " + cache::change_name(k.change) + "\n";
  }
  HttpResponse r = text_response(200, "");
  r.body = std::move(text);
  co_return r;
}

std::optional<HttpResponse> admin_gate(AdminContext& ctx, const HttpRequest& req) {
  const std::string_view path = req.path();
  const auto snap = ctx.snapshots();
  if (!host_allowed(req.host, snap->config->admin.allowed_hosts)) {
    return text_response(403, "Forbidden: Host \"" + req.host.substr(0, 100) +
                                  "\" is not an IP address, localhost or one of "
                                  "admin.allowed_hosts");
  }
  if (path == "/cluster/keys" || path == "/cluster/spends") {
    const char* what = path == "/cluster/keys" ? "push keys" : "report spends";
    if (snap->config->cluster.peers.empty()) return no_cluster(what);
    if (!from_trusted(*snap, req)) return untrusted(req, what);
    if (!parse_cluster_authorization(req.authorization)) {  // before any body byte
      return not_a_peer("the request carries no HKPGW-HMAC authorization");
    }
    return std::nullopt;
  }
  if (path.starts_with("/admin/")) {
    if (snap->config->admin.token.empty()) {
      return json_error(403, "the admin API is disabled: set admin.token_file");
    }
    if (!authorized(snap->config->admin.token, req)) {
      HttpResponse r = json_error(401, "missing or wrong bearer token");
      r.set("WWW-Authenticate", "Bearer");
      return r;
    }
    return std::nullopt;
  }
  if (req.method == "POST" || req.method == "PUT") {  // nothing else here takes a body
    return text_response(404, "Not found: no such path " + std::string(path.substr(0, 200)));
  }
  return std::nullopt;
}

asio::awaitable<HttpResponse> handle_admin(AdminContext& ctx, const HttpRequest& req) {
  const std::string_view path = req.path();
  // Asked again for requests without a body (the server asks it before reading one).
  if (auto refused = admin_gate(ctx, req)) co_return std::move(*refused);
  if (path == "/healthz") co_return text_response(200, "ok");
  if (path == "/readyz") {
    // Ready = the cache reads, and either an upstream is healthy or the cache can serve.
    if (!ctx.store.readable()) co_return text_response(503, "not ready: the cache cannot be read");
    const auto snap = ctx.snapshots();
    const bool upstream_ok = !Fleet::none_healthy(*snap);  // true for a cache-only gateway
    if (!upstream_ok && ctx.store.stats().keys == 0) {
      co_return text_response(503, "not ready: no upstream is healthy and the cache is empty");
    }
    co_return text_response(200, upstream_ok ? "ready" : "ready (cache only: no upstream is healthy)");
  }
  if (path == "/metrics") {
    HttpResponse r;
    r.content_type = "text/plain; version=0.0.4; charset=utf-8";
    const auto snap = ctx.snapshots();
    MetricsSample sample = metrics_sample(gather_stats(ctx.store, *snap));
    const auto& refresh = snap->config->refresh;
    if (ctx.refresher && refresh.enabled()) {
      sample.refresh_oldest_seconds = ctx.refresher->oldest_seconds();
      sample.refresh_period_seconds = std::chrono::duration<double>(refresh.every).count();
    }
    r.body = ctx.metrics.render(sample);
    co_return r;
  }
  if (path == "/cluster/keys") {
    HttpResponse pushed = co_await merge_pushed(ctx, req);
    co_return pushed;
  }
  if (path == "/cluster/spends") {
    HttpResponse charged = co_await charge_spends(ctx, req);
    co_return charged;
  }
  if (!path.starts_with("/admin/")) {
    co_return text_response(404, "Not found: no such path " + std::string(path.substr(0, 200)));
  }
  const auto snap = ctx.snapshots();  // admin_gate checked the token
  if (path == "/admin/reload" && req.method == "POST") {
    const ReloadResult r = co_await ctx.reload();
    if (!r.ok) {
      co_return json(422, "{\"result\":\"failure\",\"problems\":" + json_list(r.problems) +
                              ",\"effect\":\"kept the running config\"}");
    }
    co_return json(200, "{\"result\":\"success\",\"restart_required_for\":" +
                            json_list(r.restart_required) + "}");
  }
  if (path == "/admin/upstreams" && req.method == "GET") co_return json(200, upstreams_json(*snap));
  if (path == "/admin/upstreams/probe" && req.method == "POST") {
    ctx.fleet.probe_soon();
    co_return json(202, "{\"result\":\"probing\",\"upstreams\":" +
                            std::to_string(snap->upstreams.size()) + "}");
  }
  if (path == "/admin/cache" && req.method == "GET") {
    co_return json(200, cache_json(ctx.store.stats()));
  }
  if (path.starts_with("/admin/keys/") && req.method == "DELETE") {
    auto search = hkp::parse_search(path.substr(std::string_view("/admin/keys/").size()));
    const auto f = search && search->kind == hkp::SearchKind::fingerprint
                       ? cache::Fingerprint::from_hex(search->value)
                       : std::nullopt;
    if (!f) co_return json_error(400, "expected /admin/keys/<40 hex digit fingerprint>");
    const std::string fpr = f->hex();
    if (ctx.store.visit_fingerprints(std::span(&*f, 1), [](const cache::KeyRecordView&) {}) == 0) {
      co_return json_error(404, "not cached: " + fpr);
    }
    cache::WriteBatch batch;
    batch.purge.push_back(*f);
    if (const auto ec = co_await commit(ctx.store, std::move(batch))) {
      co_return json_error(503, "the cache could not remove it: " + ec.message());
    }
    co_return json(200, "{\"purged\":" + json_string(fpr) + "}");
  }
  if (path == "/admin/refresh" && req.method == "POST" && ctx.refresher) {
    if (!snap->config->refresh.enabled()) {
      co_return json_error(409, "the refresher is off: [refresh] max_rate is \"0\"");
    }
    ctx.refresher->request_all();
    co_return json(202, "{\"result\":\"scheduled\",\"keys\":" +
                            std::to_string(ctx.store.stats().keys) + ",\"max_rate\":" +
                            std::to_string(snap->config->refresh.max_rate) + "}");
  }
  if (path.starts_with("/admin/refresh/") && req.method == "POST" && ctx.refresher) {
    auto search = hkp::parse_search(path.substr(std::string_view("/admin/refresh/").size()));
    const auto f = search && search->kind == hkp::SearchKind::fingerprint
                       ? cache::Fingerprint::from_hex(search->value)
                       : std::nullopt;
    if (!f) co_return json_error(400, "expected /admin/refresh/<40 hex digit fingerprint>");
    const auto done = co_await ctx.refresher->refresh_now(*f, snap);
    if (!done) co_return json_error(404, "not cached: " + f->hex());
    const bool failed = *done == RefreshOutcome::failed;
    co_return json(failed ? 503 : 200, "{\"fingerprint\":" + json_string(f->hex()) +
                                           ",\"outcome\":" +
                                           json_string(refresh_outcome_name(*done)) + "}");
  }
  co_return json_error(404, "no such admin endpoint (or wrong method): " +
                                std::string(req.method) + " " + std::string(path.substr(0, 200)));
}

}  // namespace hkpgw::gateway
