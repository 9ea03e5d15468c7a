#include "gateway/http/routes.hpp"

#include <array>

#include "hkp/v2.hpp"
#include "hkp/vks.hpp"

namespace hkpgw::gateway {

namespace {

using hkp::Budget;

Budget spends_nothing(std::string_view, std::string_view) { return Budget::none; }
Budget submission(std::string_view, std::string_view) { return Budget::submission; }
Budget lookup(std::string_view, std::string_view query) { return hkp::lookup_budget(query); }
Budget vks(std::string_view rest, std::string_view) { return hkp::vks_budget(rest); }
Budget v2(std::string_view rest, std::string_view) { return hkp::v2_budget(rest); }
Budget key_lookup(std::string_view, std::string_view) { return Budget::key_lookup; }
// /search?q=...: what the lookup would spend for the same text (web.cpp reads q the same way).
Budget web_search(std::string_view, std::string_view query) {
  for (std::string_view rest = query; !rest.empty();) {
    const auto amp = rest.find('&');
    const std::string_view param = rest.substr(0, amp);
    if (param.starts_with("q=")) {
      return hkp::lookup_budget("op=index&search=" + std::string(param.substr(2)));
    }
    rest = amp == std::string_view::npos ? std::string_view() : rest.substr(amp + 1);
  }
  return Budget::none;  // no q: the page says what is missing
}

// One line per method and path. A new front is lines here and its handlers (router.hpp).
constexpr std::array kRoutes = {
    Route{"GET", "/", false, RouteId::home, "web", spends_nothing},
    Route{"GET", "/index.html", false, RouteId::home, "web", spends_nothing},
    // First the lookups (every cached hit walks the table up to its route, twice), then the rest.
    Route{"GET", "/pks/lookup", false, RouteId::lookup, "hkp", lookup},
    Route{"POST", "/pks/add", false, RouteId::add, "hkp", submission},
    Route{"GET", hkp::kVksPrefix, true, RouteId::vks_lookup, "vks", vks},
    Route{"POST", "/vks/v1/upload", false, RouteId::vks_upload, "vks", submission},
    Route{"POST", "/vks/v1/request-verify", false, RouteId::vks_verify, "vks", submission},
    Route{"GET", hkp::kV2Prefix, true, RouteId::v2_lookup, "v2", v2},
    Route{"POST", "/pks/v2/certs", false, RouteId::v2_submit, "v2", submission},
    Route{"GET", kRoutePrefix, true, RouteId::routed, "hkp", spends_nothing},
    // The web pages (web.cpp).
    Route{"GET", "/search", false, RouteId::web_search, "web", web_search},
    Route{"GET", "/key/", true, RouteId::web_key, "web", key_lookup},
    Route{"GET", "/upload", false, RouteId::web_upload_form, "web", spends_nothing},
    Route{"POST", "/upload", false, RouteId::web_upload, "web", submission},
    Route{"GET", "/help", false, RouteId::web_help, "web", spends_nothing},
    Route{"GET", "/robots.txt", false, RouteId::web_robots, "web", spends_nothing},
    Route{"GET", "/assets/", true, RouteId::web_asset, "web", spends_nothing},
    // For load balancers that probe the port they send clients to (the admin listener has the
    // same two, with /metrics and the admin API).
    Route{"GET", "/healthz", false, RouteId::healthz, "probe", spends_nothing},
    Route{"GET", "/readyz", false, RouteId::readyz, "probe", spends_nothing},
};

bool matches(const Route& r, std::string_view path) {
  return r.prefix ? path.starts_with(r.path) : r.path == path;
}

// The path under /u/<name>, or the path itself when it is none.
std::string_view under_route_prefix(std::string_view path) {
  if (!path.starts_with(kRoutePrefix)) return path;
  const auto slash = path.find('/', kRoutePrefix.size());
  return slash == std::string_view::npos ? std::string_view() : path.substr(slash);
}

}  // namespace

std::span<const Route> routes() { return kRoutes; }

const Route* find_route(std::string_view method, std::string_view path) {
  if (method == "HEAD") method = "GET";
  for (const Route& r : kRoutes) {
    if (r.method == method && matches(r, path)) return &r;
  }
  return nullptr;
}

std::string allowed_methods(std::string_view path) {
  std::string allowed;
  for (const Route& r : kRoutes) {
    if (matches(r, path)) allowed += (allowed.empty() ? "" : ", ") + std::string(r.method);
  }
  return allowed;
}

std::string_view front_of(std::string_view path) {
  path = under_route_prefix(path);
  for (const Route& r : kRoutes) {
    if (matches(r, path)) return r.front;
  }
  return "hkp";
}

hkp::Budget budget_of(const HttpRequest& request) {
  const std::string_view path = under_route_prefix(request.path());
  const Route* r = find_route(request.method, path);
  if (!r) return hkp::Budget::none;
  return r->budget(r->prefix ? path.substr(r->path.size()) : std::string_view(), request.query());
}

}  // namespace hkpgw::gateway
