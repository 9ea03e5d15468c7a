// The HKP front (docs/contract.md): the route table (routes.hpp) mapped to handlers, OPTIONS
// and 405 derived from it, the one-line 404 for everything else. What every request passes
// first (PROXY header, limits, reused answers) are the server's filters (net/filters.hpp), not
// the router's. Handlers are thin: they parse with hkp/ and hand over to
// LookupService or AddService, which hold the policy; the router formats only the home page
// (stats come from stats.hpp).
#pragma once

#include <atomic>

#include <boost/asio/awaitable.hpp>
#include <memory>
#include <string_view>
#include <vector>

#include "gateway/http/routes.hpp"
#include "gateway/net/http_message.hpp"
#include "gateway/service/add_service.hpp"
#include "gateway/service/cleaning_tally.hpp"
#include "gateway/service/lookup_service.hpp"
#include "hkp/vks.hpp"

namespace hkpgw::gateway {

// An error answer for a browser (the request's Accept names text/html) as a page of the web
// pages' layout, with its status and Retry-After, Allow, WWW-Authenticate kept; any other
// answer, or any other client's, unchanged (web.cpp). The router applies it to its routes'
// answers; app.cpp to the rate limiter's.
void html_error_for_browsers(const HttpRequest& request, HttpResponse& r);

class Router {
 public:
  Router(LookupService& lookups, AddService& adds, cache::Store& store, const CleaningTally& tally,
         SnapshotSource snapshot);

  Router(const Router&) = delete;
  Router& operator=(const Router&) = delete;

  // The route's answer, with Access-Control-Allow-Origin: * unless it set its own.
  // `request` must outlive the answer (the session holds it).
  boost::asio::awaitable<HttpResponse> handle(const HttpRequest& request);

 private:
  using RouteHandler = boost::asio::awaitable<HttpResponse> (Router::*)(
      const HttpRequest&, std::shared_ptr<const Snapshot>);
  static RouteHandler handler_of(RouteId id);  // the member a route of routes.cpp goes to
  boost::asio::awaitable<HttpResponse> dispatch(const HttpRequest& request);
  boost::asio::awaitable<HttpResponse> serve_home(const HttpRequest&, std::shared_ptr<const Snapshot>);
  boost::asio::awaitable<HttpResponse> serve_lookup(const HttpRequest&, std::shared_ptr<const Snapshot>);
  boost::asio::awaitable<HttpResponse> serve_add(const HttpRequest&, std::shared_ptr<const Snapshot>);
  boost::asio::awaitable<HttpResponse> serve_routed(const HttpRequest&, std::shared_ptr<const Snapshot>);
  boost::asio::awaitable<HttpResponse> serve_healthz(const HttpRequest&,
                                                     std::shared_ptr<const Snapshot>);
  boost::asio::awaitable<HttpResponse> serve_readyz(const HttpRequest&,
                                                    std::shared_ptr<const Snapshot>);
  // A /pks/lookup query, or a VKS lookup path; `only`: one upstream's route.
  boost::asio::awaitable<HttpResponse> hkp_lookup(const HttpRequest&, std::shared_ptr<const Snapshot>,
                                                  std::string only);
  boost::asio::awaitable<HttpResponse> vks_lookup(std::string_view path, const HttpRequest&,
                                                  std::shared_ptr<const Snapshot>, std::string only);
  // The VKS front (vks.cpp): Hagrid's lookups, upload and request-verify.
  boost::asio::awaitable<HttpResponse> serve_vks_lookup(const HttpRequest&,
                                                        std::shared_ptr<const Snapshot>);
  boost::asio::awaitable<HttpResponse> serve_vks_upload(const HttpRequest&,
                                                        std::shared_ptr<const Snapshot>);
  boost::asio::awaitable<HttpResponse> serve_vks_verify(const HttpRequest&,
                                                        std::shared_ptr<const Snapshot>);
  // request-verify for a token a VKS upstream issued, relayed to that upstream; at most
  // kMaxRelays at once (503 past it), so relays an upstream answers slowly never hold the
  // upstream connections misses need.
  boost::asio::awaitable<HttpResponse> relay_verify(hkp::VerifyRequest request,
                                                    std::shared_ptr<const Snapshot>);
  // The HKP v2 front (v2.cpp): lookups, submission, feature detection per category.
  boost::asio::awaitable<HttpResponse> serve_v2_lookup(const HttpRequest&,
                                                       std::shared_ptr<const Snapshot>);
  boost::asio::awaitable<HttpResponse> v2_lookup(std::string_view path, const HttpRequest&,
                                                 std::shared_ptr<const Snapshot>, std::string only);
  boost::asio::awaitable<HttpResponse> serve_v2_submit(const HttpRequest&,
                                                       std::shared_ptr<const Snapshot>);
  static HttpResponse v2_options(std::string_view path);

  // The web pages (web.cpp): search, a page per key and its download, upload, help and status,
  // robots.txt and the pages' style sheet and script; and browsers' error pages.
  boost::asio::awaitable<HttpResponse> serve_web_search(const HttpRequest&,
                                                        std::shared_ptr<const Snapshot>);
  boost::asio::awaitable<HttpResponse> serve_web_key(const HttpRequest&,
                                                     std::shared_ptr<const Snapshot>);
  boost::asio::awaitable<HttpResponse> serve_web_upload_form(const HttpRequest&,
                                                             std::shared_ptr<const Snapshot>);
  boost::asio::awaitable<HttpResponse> serve_web_upload(const HttpRequest&,
                                                        std::shared_ptr<const Snapshot>);
  boost::asio::awaitable<HttpResponse> serve_web_help(const HttpRequest&,
                                                      std::shared_ptr<const Snapshot>);
  boost::asio::awaitable<HttpResponse> serve_web_robots(const HttpRequest&,
                                                        std::shared_ptr<const Snapshot>);
  boost::asio::awaitable<HttpResponse> serve_web_asset(const HttpRequest&,
                                                       std::shared_ptr<const Snapshot>);
  // What POST /pks/add answers for accepted keys: one line per key (gpg's text), shared with
  // the upload page.
  static std::string add_text(const std::vector<AddService::AddedKey>& keys, bool kept_here_only);
  static HttpResponse options(const std::string& allowed);
  HttpResponse stats(const hkp::LookupRequest& req, const Snapshot& snap) const;

  LookupService& lookups_;
  AddService& adds_;
  cache::Store& store_;
  const CleaningTally& tally_;
  SnapshotSource snapshot_;
  static constexpr int kMaxRelays = 4;
  std::atomic<int> relays_{0};  // request-verify relays in flight
  // Seals the upstream tokens this gateway passes back (vks.cpp, relay_token): the cluster's
  // secret when there is one (any replica relays), else this random key (this process only).
  std::string token_key_;
  std::string relay_token(const Snapshot& snap, std::string_view upstream,
                          std::string_view token) const;
};

}  // namespace hkpgw::gateway
