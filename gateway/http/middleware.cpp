#include "gateway/http/middleware.hpp"

#include <algorithm>
#include <cctype>

namespace hkpgw::gateway {

namespace asio = boost::asio;

// Not coroutines themselves: each only starts the next step or the handler, so no capturing
// coroutine lambda is involved (GCC 12, ARCHITECTURE.md) and no frame is added per step.
asio::awaitable<HttpResponse> Next::operator()(const HttpRequest& request) const {
  return p_->step(i_, request, *last_);
}

asio::awaitable<HttpResponse> Pipeline::step(std::size_t i, const HttpRequest& request,
                                             const Handler& last) const {
  if (i == steps_.size()) return last(request);
  return steps_[i](request, Next(*this, i + 1, last));
}

namespace {

bool same_name(std::string_view a, std::string_view b) {  // header names: ASCII, any case
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

asio::awaitable<HttpResponse> add_allow_origin(const HttpRequest& request, Next next) {
  HttpResponse r = co_await next(request);
  const bool has = std::any_of(r.headers.begin(), r.headers.end(), [](const auto& h) {
    return same_name(h.first, "Access-Control-Allow-Origin");
  });
  if (!has) r.set("Access-Control-Allow-Origin", "*");
  co_return r;
}

}  // namespace

Middleware allow_any_origin() { return add_allow_origin; }

}  // namespace hkpgw::gateway
