// Routing of the HKP listener (docs/contract.md): /, /pks/lookup, /pks/add, OPTIONS, and the
// one-line errors for everything else. Parses with hkp/, decides nothing about caching (that is
// LookupService), formats the few pages of its own.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <functional>
#include <memory>

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
  HttpResponse home(const Snapshot& snap) const;
  HttpResponse stats(const hkp::LookupRequest& req, const Snapshot& snap) const;

  LookupService& lookups_;
  AddService& adds_;
  cache::Store& store_;
  SnapshotSource snapshot_;
};

}  // namespace hkpgw::gateway
