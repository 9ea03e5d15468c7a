#include "gateway/http/middleware.hpp"

#include <algorithm>

#include "hkp/lookup.hpp"

namespace hkpgw::gateway {

namespace asio = boost::asio;

asio::awaitable<HttpResponse> Pipeline::step(std::size_t i, const HttpRequest& request,
                                             const Handler& last) const {
  if (i == steps_.size()) {
    HttpResponse r = co_await last(request);
    co_return r;
  }
  // Not a coroutine itself: it only starts the next step, whose frame holds copies of its
  // arguments (GCC 12 and capturing coroutine lambdas, ARCHITECTURE.md).
  const Handler next = [this, i, &last](const HttpRequest& r) { return step(i + 1, r, last); };
  HttpResponse r = co_await steps_[i](request, next);
  co_return r;
}

namespace {

asio::awaitable<HttpResponse> add_allow_origin(const HttpRequest& request, const Handler& next) {
  HttpResponse r = co_await next(request);
  const bool has = std::any_of(r.headers.begin(), r.headers.end(), [](const auto& h) {
    return hkp::ascii_lower(h.first) == "access-control-allow-origin";
  });
  if (!has) r.set("Access-Control-Allow-Origin", "*");
  co_return r;
}

}  // namespace

Middleware allow_any_origin() { return add_allow_origin; }

}  // namespace hkpgw::gateway
