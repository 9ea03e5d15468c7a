// The seam in front of the handlers: a pipeline of steps every request of a front passes through
// before its route's handler, each able to answer by itself (refuse, rate-limit) or to call the
// next step and change its answer (headers). The request carries the client as a structured
// Peer (address, port, and the unit per-client limits count), so a step never parses "ip:port".
#pragma once

#include <boost/asio/awaitable.hpp>
#include <functional>
#include <vector>

#include "gateway/net/http_message.hpp"

namespace hkpgw::gateway {

using Handler = std::function<boost::asio::awaitable<HttpResponse>(const HttpRequest&)>;

class Pipeline;
// The rest of the pipeline (and the handler) after one step: a few words, passed by value, no
// allocation per request. Valid only during the step's call.
class Next {
 public:
  boost::asio::awaitable<HttpResponse> operator()(const HttpRequest& request) const;

 private:
  friend class Pipeline;
  Next(const Pipeline& p, std::size_t i, const Handler& last) : p_(&p), i_(i), last_(&last) {}
  const Pipeline* p_;
  std::size_t i_;
  const Handler* last_;
};
using Middleware =
    std::function<boost::asio::awaitable<HttpResponse>(const HttpRequest&, Next next)>;

class Pipeline {
 public:
  // Steps run in the order they were added: the first added sees the request first and the
  // answer last.
  void use(Middleware step) { steps_.push_back(std::move(step)); }
  boost::asio::awaitable<HttpResponse> run(const HttpRequest& request, const Handler& last) const {
    return step(0, request, last);
  }

 private:
  friend class Next;
  boost::asio::awaitable<HttpResponse> step(std::size_t i, const HttpRequest& request,
                                            const Handler& last) const;
  std::vector<Middleware> steps_;
};

// Access-Control-Allow-Origin: * on every answer (the HKP draft asks it of keyservers, so a web
// page may query them), unless the handler set its own.
Middleware allow_any_origin();

}  // namespace hkpgw::gateway
