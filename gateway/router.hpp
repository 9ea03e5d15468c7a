// Routing of the HKP listener (docs/contract.md): a table of method + path -> handler
// (Router::routes), OPTIONS and 405 derived from it, and the one-line 404 for everything else.
// Handlers are thin: they parse with hkp/ and hand over to LookupService or AddService, which
// hold the policy; the router formats only the home and stats pages.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <functional>
#include <memory>
#include <string_view>
#include <vector>

#include "gateway/add_service.hpp"
#include "gateway/http_message.hpp"
#include "gateway/lookup_service.hpp"

namespace hkpgw::gateway {

class Router {
 public:
  Router(LookupService& lookups, AddService& adds, cache::Store& store, SnapshotSource snapshot)
      : lookups_(lookups), adds_(adds), store_(store), snapshot_(std::move(snapshot)) {}

  boost::asio::awaitable<HttpResponse> handle(HttpRequest request);

 private:
  using Handler = boost::asio::awaitable<HttpResponse> (Router::*)(
      const HttpRequest&, std::shared_ptr<const Snapshot>);
  struct Route {
    std::string_view method;
    std::string_view path;
    Handler handler;
  };
  static const std::vector<Route>& routes();
  boost::asio::awaitable<HttpResponse> serve_home(const HttpRequest&, std::shared_ptr<const Snapshot>);
  boost::asio::awaitable<HttpResponse> serve_lookup(const HttpRequest&, std::shared_ptr<const Snapshot>);
  boost::asio::awaitable<HttpResponse> serve_add(const HttpRequest&, std::shared_ptr<const Snapshot>);
  static HttpResponse options(const std::string& allowed);

  HttpResponse home(const Snapshot& snap) const;
  HttpResponse stats(const hkp::LookupRequest& req, const Snapshot& snap) const;

  LookupService& lookups_;
  AddService& adds_;
  cache::Store& store_;
  SnapshotSource snapshot_;
};

}  // namespace hkpgw::gateway
