// The seams of the HTTP server's request path (Envoy's listener and HTTP filters): what runs on a
// connection before its first request, and on every request before the handler, is registered
// with the server (HttpServer::add_connection_filter, add_request_filter), not written into the
// session, which stays read -> request filters -> handler -> write.
//
// Connection filters run in order on each new connection, before TLS: each may name the client
// the connection is for from now on (the PROXY protocol header) or close it (a client over its
// share of connections). Request filters run in order on every complete request, the reused
// answers' path included: each may let it go on, answer it (a rate limit's 429), or answer it
// with a prepared answer (the cached-key hit path); the handler's answer goes back to each.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <vector>

#include "config/units.hpp"
#include "gateway/net/answer_reuse.hpp"
#include "gateway/net/http_message.hpp"

namespace hkpgw::gateway {

class ConnectionFilter {
 public:
  virtual ~ConnectionFilter() = default;
  // A new connection from `peer`: the client it is for from now on, or nothing to close it.
  // Runs on the connection's thread; may read from the socket (the bytes it consumes are the
  // filter's) within the server's client_timeout.
  virtual boost::asio::awaitable<std::optional<Peer>> on_connect(
      boost::asio::ip::tcp::socket& socket, Peer peer, std::chrono::milliseconds timeout) = 0;
  // The connection ended; only for connections this filter let in, with the peer it returned.
  virtual void on_close(const Peer&) {}
};

// What a request filter says of a request: go on (neither set), answer it, or send a prepared
// answer again.
struct FilterVerdict {
  std::optional<HttpResponse> answer;
  std::shared_ptr<const PreparedAnswer> prepared;
};

class RequestFilter {
 public:
  virtual ~RequestFilter() = default;
  // Runs on the connection's thread for every complete request; must be cheap and not throw.
  virtual FilterVerdict on_request(const HttpRequest& request) = 0;
  // The handler's answer to a request no filter answered.
  virtual void on_answer(const HttpRequest&, const HttpResponse&) {}
};

// The PROXY protocol (v1 or v2, net/proxy_protocol.hpp) first on every connection, from a sender
// in `trusted` only: the client it names becomes the peer; a missing, malformed or untrusted
// header closes the connection (logged at most every 10 s).
std::unique_ptr<ConnectionFilter> proxy_protocol_filter(std::vector<config::Network> trusted);

// A request filter from a function (a rate limit): its response, if any, is the answer.
std::unique_ptr<RequestFilter> request_filter(
    std::function<std::optional<HttpResponse>(const HttpRequest&)> admit);

// Answers sent again without the handler (AnswerReuse: the cached-key hit path), for GET and
// HEAD over HTTP/1.1 keep-alive; `reuse` must outlive the server.
std::unique_ptr<RequestFilter> answer_reuse_filter(AnswerReuse& reuse);

}  // namespace hkpgw::gateway
