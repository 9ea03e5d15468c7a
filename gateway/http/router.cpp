#include "gateway/http/router.hpp"

#include "gateway/net/cluster_auth.hpp"

#include "gateway/http/formats.hpp"
#include "gateway/http/stats.hpp"
#include "gateway/observe/version.hpp"
#include "hkp/index.hpp"
#include "hkp/submission.hpp"
#include "hkp/v2.hpp"
#include "hkp/vks.hpp"

namespace hkpgw::gateway {

namespace asio = boost::asio;

namespace {

HttpResponse method_not_allowed(const std::string& allowed) {
  HttpResponse r = text_response(405, "Method not allowed: use " + allowed);
  r.set("Allow", allowed);
  return r;
}

HttpResponse from_problem(const Problem& p) { return text_response(p.status, p.message()); }

std::string join(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : ",") + s;
  return out;
}

}  // namespace

Router::Router(LookupService& lookups, AddService& adds, cache::Store& store,
               const CleaningTally& tally, SnapshotSource snapshot)
    : lookups_(lookups), adds_(adds), store_(store), tally_(tally), snapshot_(std::move(snapshot)),
      token_key_(random_nonce() + random_nonce()) {}

asio::awaitable<HttpResponse> Router::handle(const HttpRequest& request) {
  HttpResponse r = co_await dispatch(request);
  html_error_for_browsers(request, r);
  allow_any_origin(r);
  co_return r;
}

Router::RouteHandler Router::handler_of(RouteId id) {
  switch (id) {
    case RouteId::home: return &Router::serve_home;
    case RouteId::lookup: return &Router::serve_lookup;
    case RouteId::add: return &Router::serve_add;
    case RouteId::vks_lookup: return &Router::serve_vks_lookup;
    case RouteId::vks_upload: return &Router::serve_vks_upload;
    case RouteId::vks_verify: return &Router::serve_vks_verify;
    case RouteId::v2_lookup: return &Router::serve_v2_lookup;
    case RouteId::v2_submit: return &Router::serve_v2_submit;
    case RouteId::healthz: return &Router::serve_healthz;
    case RouteId::readyz: return &Router::serve_readyz;
    case RouteId::web_search: return &Router::serve_web_search;
    case RouteId::web_key: return &Router::serve_web_key;
    case RouteId::web_upload_form: return &Router::serve_web_upload_form;
    case RouteId::web_upload: return &Router::serve_web_upload;
    case RouteId::web_help: return &Router::serve_web_help;
    case RouteId::web_robots: return &Router::serve_web_robots;
    case RouteId::web_asset: return &Router::serve_web_asset;
    case RouteId::routed: break;
  }
  return &Router::serve_routed;
}

asio::awaitable<HttpResponse> Router::dispatch(const HttpRequest& req) {
  const std::shared_ptr<const Snapshot> snap = snapshot_();  // pinned for the whole request
  const std::string_view path = req.path();
  if (req.method == "OPTIONS") {  // CORS preflight, feature detection
    if (path.starts_with(hkp::kV2Prefix)) co_return v2_options(path);  // per category
    co_return options(allowed_methods(path));
  }
  if (const Route* route = find_route(req.method, path)) {
    HttpResponse r = co_await (this->*handler_of(route->id))(req, snap);
    co_return r;
  }
  if (const std::string allowed = allowed_methods(path); !allowed.empty()) {
    co_return method_not_allowed(allowed);
  }
  co_return text_response(404, "Not found: no such path " + std::string(path.substr(0, 200)));
}

// The HKP listener's probes, for load balancers. Terse: what the admin listener's /readyz says
// about upstreams is not for the public. no-store: a proxy between must never answer a probe.
asio::awaitable<HttpResponse> Router::serve_healthz(const HttpRequest&,
                                                    std::shared_ptr<const Snapshot>) {
  HttpResponse r = text_response(200, "ok");
  r.set("Cache-Control", "no-store");
  co_return r;
}

asio::awaitable<HttpResponse> Router::serve_readyz(const HttpRequest&,
                                                   std::shared_ptr<const Snapshot> snap) {
  const Readiness ready = readiness(store_, *snap);
  HttpResponse r = text_response(ready.ready ? 200 : 503, ready.ready ? "ready" : "not ready");
  r.set("Cache-Control", "no-store");
  co_return r;
}

asio::awaitable<HttpResponse> Router::serve_lookup(const HttpRequest& req,
                                                   std::shared_ptr<const Snapshot> snap) {
  HttpResponse r = co_await hkp_lookup(req, std::move(snap), {});
  co_return r;
}

asio::awaitable<HttpResponse> Router::serve_routed(const HttpRequest& req,
                                                   std::shared_ptr<const Snapshot> snap) {
  const std::string_view path = req.path();
  const auto slash = path.find('/', kRoutePrefix.size());
  const std::string_view name = path.substr(kRoutePrefix.size(), slash - kRoutePrefix.size());
  const std::string_view rest = slash == std::string_view::npos ? "" : path.substr(slash);
  if (name.empty() || !snap->find(name)) {
    co_return text_response(404, "Not found: no upstream named \"" +
                                     std::string(name.substr(0, 80)) +
                                     "\" (/help lists them when [web] show_upstreams is on)");
  }
  std::string only(name);  // named: no temporaries across a suspension (GCC 12)
  if (rest == "/pks/lookup") {
    HttpResponse r = co_await hkp_lookup(req, std::move(snap), std::move(only));
    co_return r;
  }
  if (rest.starts_with(hkp::kVksPrefix)) {
    HttpResponse r = co_await vks_lookup(rest, req, std::move(snap), std::move(only));
    co_return r;
  }
  if (rest.starts_with(hkp::kV2Prefix)) {
    HttpResponse r = co_await v2_lookup(rest, req, std::move(snap), std::move(only));
    co_return r;
  }
  co_return text_response(404, "Not found: a route takes /u/<upstream>/pks/lookup, "
                               "/u/<upstream>/vks/v1/... or /u/<upstream>/pks/v2/...");
}

asio::awaitable<HttpResponse> Router::hkp_lookup(const HttpRequest& req,
                                                 std::shared_ptr<const Snapshot> snap,
                                                 std::string only) {
  auto parsed = hkp::parse_lookup(req.query());
  if (!parsed) {
    req.access.op = "lookup";
    co_return from_problem(parsed.error());
  }
  if (parsed->op == hkp::Op::stats) {
    req.access.op = "stats";
    co_return stats(*parsed, *snap);
  }
  LookupOutcome o = co_await lookups_.lookup(*parsed, req.client_no_cache, snap, std::move(only));
  co_return render(hkp_format(), *parsed, std::move(o), req);
}

// POST /pks/add: the form (or raw body) in; gpg's text (one line per key) or the mr summary out.
asio::awaitable<HttpResponse> Router::serve_add(const HttpRequest& req,
                                                std::shared_ptr<const Snapshot> snap) {
  req.access.op = "add";
  auto sub = hkp::parse_submission(req.content_type, req.body, req.query());
  if (!sub) co_return from_problem(sub.error());
  const bool kept_here_only = snap->config->upstreams.forward_adds == config::ForwardAdds::none;
  const hkp::Submission& submission = *sub;
  AddService::Submitted done = co_await adds_.submit(submission, req, std::move(snap));
  if (auto* refused = std::get_if<Refusal>(&done)) co_return refusal_text(*refused);
  const auto& keys = std::get<std::vector<AddService::AddedKey>>(done);
  const std::string text = add_text(keys, kept_here_only);
  std::string mr = "info:1:" + std::to_string(keys.size()) + "\n";
  for (const auto& k : keys) {
    mr += "key:" + k.fingerprint + ":" + cache::change_name(k.change) + ":" + join(k.forwarded) +
          ":" + join(k.queued) + "\n";
  }
  HttpResponse r;
  r.body = sub->machine_readable ? mr : text;
  co_return r;
}

std::string Router::add_text(const std::vector<AddService::AddedKey>& keys, bool kept_here_only) {
  std::string text;
  for (const auto& k : keys) {
    text += k.fingerprint + ": " + cache::change_name(k.change);
    if (kept_here_only) text += "; kept here only";
    if (!k.forwarded.empty()) text += "; forwarded to " + join(k.forwarded);
    if (!k.refused.empty()) text += "; refused by " + join(k.refused);
    if (!k.queued.empty()) {
      text += "; queued for " + join(k.queued) + " (upstream unavailable, retried)";
    }
    text += "\n";
  }
  return text;
}

HttpResponse Router::options(const std::string& allowed) {
  HttpResponse r;
  r.status = 200;
  const std::string methods = allowed.empty() ? "GET, POST, OPTIONS" : allowed + ", OPTIONS";
  r.set("Allow", methods);
  r.set("Access-Control-Allow-Methods", methods);
  r.set("Access-Control-Allow-Headers", "Content-Type");
  return r;
}

HttpResponse Router::stats(const hkp::LookupRequest& req, const Snapshot& snap) const {
  const StatsReport report = gather_stats(store_, snap, tally_.totals());
  HttpResponse r;
  if (req.machine_readable) {
    r.content_type = "application/json";
    r.body = stats_json(report);
  } else {
    r.body = stats_text(report);
  }
  return r;
}

}  // namespace hkpgw::gateway
