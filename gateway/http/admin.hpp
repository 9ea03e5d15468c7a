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
// and, without the token but only from cluster.trusted networks:
//   POST   /cluster/keys            keys another replica accepted (gateway/net/peer_client.hpp): merged like a
//                                   submission, never forwarded nor pushed on
//   POST   /cluster/spends          what another replica's clients spent (cluster_spends.hpp)
#pragma once

#include <boost/asio/awaitable.hpp>
#include <functional>
#include <string>
#include <vector>

#include "cache/store.hpp"
#include "gateway/net/cluster_auth.hpp"
#include "gateway/net/http_message.hpp"
#include "gateway/http/cluster_spends.hpp"
#include "gateway/observe/metrics.hpp"
#include "gateway/service/add_service.hpp"
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
  AddService* adds = nullptr;             // merges what other replicas push (/cluster/keys)
  ClusterSpends* spends = nullptr;        // charges what their clients spent (/cluster/spends)
  WorkPool* pool = nullptr;               // where a report is parsed and charged (not the
                                          // network thread, which serves cached answers too)
  Refresher* refresher = nullptr;         // POST /admin/refresh, refresh_oldest_seconds
  ReplayGuard replays;                    // /cluster/* requests already taken (cluster_auth.hpp)
};

boost::asio::awaitable<HttpResponse> handle_admin(AdminContext& ctx, const HttpRequest& request);

// Whether a request may be answered at all, from its head: the Host, cluster trust (peers
// configured, sender in cluster.trusted, an HKPGW-HMAC authorization of the right shape; the MAC
// itself is checked with the body) for /cluster/*, the bearer token for /admin/*; a POST
// anywhere else is 404. The admin listener asks it before reading a body, so an untrusted sender
// cannot make it read one. Cheap; never throws.
std::optional<HttpResponse> admin_gate(AdminContext& ctx, const HttpRequest& request);

}  // namespace hkpgw::gateway
