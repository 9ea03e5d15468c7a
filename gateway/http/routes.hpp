// The HKP listener's paths, spelled once: each route is a method and a path (or a path prefix),
// the handler it goes to (a RouteId the Router maps to its member), the front it belongs to
// (metrics, access lines) and the per-client budget a request on it spends (the rate limits,
// asked before the handler and before a reused answer). Pure: no service, no I/O.
#pragma once

#include <span>
#include <string>
#include <string_view>

#include "gateway/net/http_message.hpp"
#include "hkp/budget.hpp"

namespace hkpgw::gateway {

// Per-upstream routes: /u/<name>/pks/lookup and /u/<name>/vks/v1/... ask that upstream alone;
// they belong to the front, and spend the budget, of the path under the prefix.
inline constexpr std::string_view kRoutePrefix = "/u/";

enum class RouteId {
  home,
  lookup,
  add,
  vks_lookup,
  vks_upload,
  vks_verify,
  v2_lookup,
  v2_submit,
  routed,
  healthz,
  readyz,
  // The web pages (web.cpp).
  web_search,
  web_key,
  web_upload_form,
  web_upload,
  web_help,
  web_robots,
  web_asset
};

struct Route {
  std::string_view method;
  std::string_view path;
  bool prefix;  // `path` and everything under it (/vks/v1/by-fingerprint/<FPR>)
  RouteId id;
  std::string_view front;  // "hkp", "vks", "v2", "web", "probe" (a load balancer's health checks)
  // What a request spends, from the path under `path` (a prefix route) and the query.
  hkp::Budget (*budget)(std::string_view rest, std::string_view query);
};

// The table, in match order.
std::span<const Route> routes();

// The route for this method and path (HEAD as GET), or null.
const Route* find_route(std::string_view method, std::string_view path);
// The methods the path knows ("GET, POST"), for 405 and OPTIONS; "" when none.
std::string allowed_methods(std::string_view path);

// A request's front ("hkp" for paths no route knows: the home page's front) and budget,
// per-upstream routes by the path under them. Static text; no allocation unless a query
// parameter name is escaped.
std::string_view front_of(std::string_view path);
hkp::Budget budget_of(const HttpRequest& request);

}  // namespace hkpgw::gateway
