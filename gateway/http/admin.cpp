#include "gateway/http/admin.hpp"

#include <arpa/inet.h>
#include <openssl/crypto.h>

#include <algorithm>
#include <cctype>
#include <ctime>

#include "cache/record.hpp"
#include "gateway/http/formats.hpp"
#include "gateway/http/stats.hpp"
#include "gateway/observe/log.hpp"
#include "gateway/service/cache_writer.hpp"
#include "hkp/json.hpp"
#include "hkp/lookup.hpp"
#include "hkp/submission.hpp"

namespace hkpgw::gateway {

namespace asio = boost::asio;

namespace {

namespace json = hkp::json;

json::array json_list(const std::vector<std::string>& v) {
  json::array out;
  for (const auto& s : v) out.push_back(hkp::json_text(s));
  return out;
}

HttpResponse json_answer(unsigned status, const json::value& body) {
  HttpResponse r;
  r.status = status;
  r.content_type = "application/json";
  r.body = hkp::json_body(body, true);
  return r;
}

HttpResponse json_error(unsigned status, std::string_view message) {
  return json_answer(status, {{"error", hkp::json_text(message)}});
}

bool authorized(const std::string& token, const HttpRequest& req) {
  constexpr std::string_view kBearer = "Bearer ";
  if (!req.authorization.starts_with(kBearer)) return false;
  const std::string_view given = std::string_view(req.authorization).substr(kBearer.size());
  return given.size() == token.size() &&
         CRYPTO_memcmp(given.data(), token.data(), given.size()) == 0;  // constant time
}

// The fingerprint that ends `path` after `prefix` (/admin/keys/<FPR>), or nothing.
std::optional<cache::Fingerprint> fingerprint_after(std::string_view path,
                                                    std::string_view prefix) {
  auto search = hkp::parse_search(path.substr(prefix.size()));
  if (!search || search->kind != hkp::SearchKind::fingerprint) return std::nullopt;
  return cache::Fingerprint::from_hex(search->value);
}

json::value upstreams_json(const Snapshot& snap) {
  json::array list;
  for (const auto& upstream : snap.upstreams) {
    const auto& u = *upstream;
    const auto h = u.health().view();
    list.push_back({{"name", hkp::json_text(u.name())},
                    {"url", hkp::json_text(u.config().url)},
                    {"default", u.name() == snap.config->upstreams.default_name},
                    {"healthy", h.healthy},
                    {"consecutive_failures", h.consecutive_failures},
                    {"consecutive_successes", h.consecutive_successes},
                    {"probes", h.probes},
                    {"probe_failures", h.probe_failures},
                    {"last_error", hkp::json_text(h.last_error)},
                    {"connections", u.open_connections()},
                    {"tls_resumptions", u.resumed_handshakes()}});
  }
  return {{"upstreams", std::move(list)}};
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

void AdminRouter::add(std::string method, std::string path, Gate gate, Handler handler,
                      bool prefix) {
  routes_.push_back({std::move(method), std::move(path), prefix, std::move(gate),
                     std::move(handler)});
}

std::optional<HttpResponse> AdminRouter::gate(const HttpRequest& req) const {
  const std::string_view path = req.path();
  const auto snap = snapshots_();
  if (!host_allowed(req.host, snap->config->admin.allowed_hosts)) {
    return text_response(403, "Forbidden: Host \"" + req.host.substr(0, 100) +
                                  "\" is not an IP address, localhost or one of "
                                  "admin.allowed_hosts");
  }
  for (const Route& r : routes_) {
    if (matches(r, path)) return r.gate ? r.gate(req) : std::nullopt;
  }
  if (req.method == "POST" || req.method == "PUT") {  // nothing else here takes a body
    return text_response(404, "Not found: no such path " + std::string(path.substr(0, 200)));
  }
  return std::nullopt;
}

asio::awaitable<HttpResponse> AdminRouter::handle(const HttpRequest& req) const {
  // Asked again for requests without a body (the server asks it before reading one).
  if (auto refused = gate(req)) co_return std::move(*refused);
  const std::string_view path = req.path();
  std::string allowed;
  for (const Route& r : routes_) {
    if (!matches(r, path)) continue;
    if (r.method == "*" && !allowed.empty()) break;  // a fallback, for paths nothing else knows
    if (r.method == "*" || r.method == req.method ||
        (r.method == "GET" && req.method == "HEAD")) {
      HttpResponse res = co_await r.handler(req);
      co_return res;
    }
    allowed += (allowed.empty() ? "" : ", ") + r.method;
  }
  if (!allowed.empty()) {
    HttpResponse r = text_response(405, "Method not allowed: use " + allowed);
    r.set("Allow", allowed);
    co_return r;
  }
  co_return text_response(404, "Not found: no such path " + std::string(path.substr(0, 200)));
}

void add_admin_routes(AdminRouter& router, AdminContext& ctx) {
  AdminContext* c = &ctx;
  router.add("GET", "/healthz", {}, [](const HttpRequest&) -> asio::awaitable<HttpResponse> {
    co_return text_response(200, "ok");
  });
  router.add("GET", "/readyz", {}, [c](const HttpRequest&) -> asio::awaitable<HttpResponse> {
    const Readiness r = readiness(c->store, *c->snapshots());
    co_return text_response(r.ready ? 200 : 503, r.why);
  });
  router.add("GET", "/metrics", {}, [c](const HttpRequest&) -> asio::awaitable<HttpResponse> {
    HttpResponse r;
    r.content_type = "text/plain; version=0.0.4; charset=utf-8";
    const auto snap = c->snapshots();
    MetricsSample sample = metrics_sample(gather_stats(c->store, *snap));
    const auto& refresh = snap->config->refresh;
    if (c->refresher && refresh.enabled()) {
      sample.refresh_oldest_seconds = c->refresher->oldest_seconds();
      sample.refresh_period_seconds = std::chrono::duration<double>(refresh.every).count();
    }
    r.body = c->metrics.render(sample);
    co_return r;
  });

  // /admin/*: the bearer token first, whatever the path (an unknown one learns nothing more).
  const AdminRouter::Gate token = [c](const HttpRequest& req) -> std::optional<HttpResponse> {
    const auto snap = c->snapshots();
    if (snap->config->admin.token.empty()) {
      return json_error(403, "the admin API is disabled: set admin.token_file");
    }
    if (!authorized(snap->config->admin.token, req)) {
      HttpResponse r = json_error(401, "missing or wrong bearer token");
      r.set("WWW-Authenticate", "Bearer");
      return r;
    }
    return std::nullopt;
  };
  using Awaitable = asio::awaitable<HttpResponse>;
  router.add("POST", "/admin/reload", token, [c](const HttpRequest&) -> Awaitable {
    const ReloadResult r = co_await c->reload();
    if (!r.ok) {
      co_return json_answer(422, {{"result", "failure"},
                                  {"problems", json_list(r.problems)},
                                  {"effect", "kept the running config"}});
    }
    co_return json_answer(
        200, {{"result", "success"}, {"restart_required_for", json_list(r.restart_required)}});
  });
  router.add("GET", "/admin/upstreams", token, [c](const HttpRequest&) -> Awaitable {
    co_return json_answer(200, upstreams_json(*c->snapshots()));
  });
  router.add("POST", "/admin/upstreams/probe", token, [c](const HttpRequest&) -> Awaitable {
    c->fleet.probe_soon();
    co_return json_answer(202,
                          {{"result", "probing"}, {"upstreams", c->snapshots()->upstreams.size()}});
  });
  router.add("GET", "/admin/cache", token, [c](const HttpRequest&) -> Awaitable {
    HttpResponse r = json_answer(200, nullptr);
    r.body = cache_json(c->store.stats());  // built by the figures' owner, stats.cpp
    co_return r;
  });
  router.add(
      "DELETE", "/admin/keys/", token,
      [c](const HttpRequest& req) -> Awaitable {
        const auto f = fingerprint_after(req.path(), "/admin/keys/");
        if (!f) co_return json_error(400, "expected /admin/keys/<40 hex digit fingerprint>");
        const std::string fpr = f->hex();
        if (c->store.visit_fingerprints(std::span(&*f, 1), [](const cache::KeyRecordView&) {}) ==
            0) {
          co_return json_error(404, "not cached: " + fpr);
        }
        cache::WriteBatch batch;
        batch.purge.push_back(*f);
        if (const auto ec = co_await commit(c->store, std::move(batch))) {
          co_return json_error(503, "the cache could not remove it: " + ec.message());
        }
        co_return json_answer(200, {{"purged", fpr}});
      },
      true);
  router.add("POST", "/admin/refresh", token, [c](const HttpRequest&) -> Awaitable {
    const auto snap = c->snapshots();
    if (!c->refresher) co_return json_error(404, "no refresher runs here");
    if (!snap->config->refresh.enabled()) {
      co_return json_error(409, "the refresher is off: [refresh] max_rate is \"0\"");
    }
    c->refresher->request_all();
    co_return json_answer(202, {{"result", "scheduled"},
                                {"keys", c->store.stats().keys},
                                {"max_rate", hkp::json_number(snap->config->refresh.max_rate)}});
  });
  router.add(
      "POST", "/admin/refresh/", token,
      [c](const HttpRequest& req) -> Awaitable {
        if (!c->refresher) co_return json_error(404, "no refresher runs here");
        const auto f = fingerprint_after(req.path(), "/admin/refresh/");
        if (!f) co_return json_error(400, "expected /admin/refresh/<40 hex digit fingerprint>");
        const auto done = co_await c->refresher->refresh_now(*f, c->snapshots());
        if (!done) co_return json_error(404, "not cached: " + f->hex());
        const bool failed = *done == RefreshOutcome::failed;
        co_return json_answer(failed ? 503 : 200, {{"fingerprint", f->hex()},
                                                   {"outcome", refresh_outcome_name(*done)}});
      },
      true);
  // Any other /admin/ path: behind the token too, then 404.
  router.add(
      "*", "/admin/", token,
      [](const HttpRequest& req) -> Awaitable {
        co_return json_error(404, "no such admin endpoint: " + std::string(req.method) + " " +
                                      std::string(req.path().substr(0, 200)));
      },
      true);
}

}  // namespace hkpgw::gateway
