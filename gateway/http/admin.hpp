// The admin listener (docs/contract.md), on loopback by default: /healthz, /readyz and
// /metrics for everyone who can reach it; /admin/* only with `Authorization: Bearer <token>`
// (the token from admin.token_file, read again on every reload; without one, /admin/* answers
// 403). Answers are JSON.
//   POST   /admin/reload            reload the config file (as SIGHUP does)
//   GET    /admin/upstreams         health, connections and last error of each upstream
//   POST   /admin/upstreams/probe   probe every upstream now
//   GET    /admin/cache             cache counts and sizes
//   DELETE /admin/keys/<fingerprint> remove one key from the cache
//   POST   /admin/refresh           every cached key due for a refresh now (at [refresh] max_rate)
//   POST   /admin/refresh/<fingerprint> refresh one cached key now; answers what it did
// Other modules add their own routes with their own gates: the cluster's /cluster/* (trusted
// networks and the cluster's HMAC, gateway/cluster/cluster.hpp).
#pragma once

#include <boost/asio/awaitable.hpp>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "cache/store.hpp"
#include "gateway/net/http_message.hpp"
#include "gateway/observe/metrics.hpp"
#include "gateway/service/refresher.hpp"
#include "gateway/service/work_pool.hpp"
#include "gateway/upstream/fleet.hpp"

namespace hkpgw::gateway {

struct ReloadResult {
  bool ok = false;
  std::vector<std::string> problems;          // config problems, "FILE:LINE: key: what"
  std::vector<std::string> restart_required;  // keys that changed but apply on restart only
};

struct AdminContext {
  cache::Store& store;
  Fleet& fleet;
  Metrics& metrics;
  SnapshotSource snapshots;
  // The token comes with each snapshot (reloadable).
  std::function<boost::asio::awaitable<ReloadResult>()> reload;
  Refresher* refresher = nullptr;  // POST /admin/refresh, refresh_oldest_seconds
};

// The admin listener's route table: method + path (or path prefix) -> who may ask (the route's
// gate, asked on the request's head before any body byte is read) and the handler. Routes are
// matched in the order they were added.
class AdminRouter {
 public:
  using Gate = std::function<std::optional<HttpResponse>(const HttpRequest&)>;
  using Handler = std::function<boost::asio::awaitable<HttpResponse>(const HttpRequest&)>;

  explicit AdminRouter(SnapshotSource snapshots) : snapshots_(std::move(snapshots)) {}
  // `gate` empty: anyone who reaches the listener. `method` "*": any method, as a fallback for
  // the paths under it that no route before it knows.
  void add(std::string method, std::string path, Gate gate, Handler handler, bool prefix = false);

  // Whether a request may be answered at all, from its head: the Host (DNS rebinding), then
  // the gate of the first route its path matches (whatever the method, so a wrong method on a
  // guarded path learns nothing); a POST or PUT to no route is 404 before its body. The
  // listener asks it before reading a body. Cheap; never throws.
  std::optional<HttpResponse> gate(const HttpRequest& request) const;
  // The gate again, then the route: 405 with Allow for a known path and another method, 404
  // for an unknown one.
  boost::asio::awaitable<HttpResponse> handle(const HttpRequest& request) const;

 private:
  struct Route {
    std::string method, path;
    bool prefix;
    Gate gate;
    Handler handler;
  };
  bool matches(const Route& r, std::string_view path) const {
    return r.prefix ? path.starts_with(r.path) : path == r.path;
  }
  SnapshotSource snapshots_;
  std::vector<Route> routes_;
};

// The probes, /metrics and the token-protected /admin/* routes.
void add_admin_routes(AdminRouter& router, AdminContext& ctx);

// Whether the Host header names this listener: an IP literal, localhost, or one of `allowed`.
bool host_allowed(std::string_view host, const std::vector<std::string>& allowed);

}  // namespace hkpgw::gateway
