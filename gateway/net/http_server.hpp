// The HTTP/1.x server under the HKP and admin listeners (and the fuzzers): listeners
// (plain and TLS), one coroutine per connection that owns its stream and buffer, and the limits
// of every step (TLS handshake, header, body, write) from ServerLimits.
//
// HTTP/1.0 clients (dirmngr) get Content-Length and a closed connection; HTTP/1.1 clients get
// keep-alive. Responses are never chunked.
#pragma once

#include <atomic>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "config/units.hpp"
#include "gateway/net/filters.hpp"
#include "gateway/net/http_message.hpp"

namespace boost::asio::ssl {
class context;
}

namespace hkpgw::gateway {

struct ServerLimits {
  std::size_t max_header_bytes = 16 << 10;
  std::size_t max_body_bytes = 1 << 20;
  std::chrono::milliseconds client_timeout{15000};
  // At the limit the connection idle longest (waiting for a request) is closed to make room;
  // only when none is idle is the new one refused.
  std::size_t max_connections = 10000;
  // Per client (the address, IPv6 by /64, as the connection filters left it); 0 = no limit.
  // Checked after every connection filter (a PROXY header names the client first).
  std::size_t max_per_client = 0;
  // Body bytes being received at once (each request counted at its Content-Length, chunked ones
  // at max_body_bytes): past it 503 before the body is read.
  std::uint64_t max_body_memory = 256ULL << 20;
  // Bytes per second a body must average after a 5 s grace, or 408; 0 = no minimum.
  std::uint64_t min_body_rate = 1024;
};

// Must not throw; an exception that escapes anyway becomes a 500 and is logged. The request
// lives in the session until the answer is complete.
using RequestHandler = std::function<boost::asio::awaitable<HttpResponse>(const HttpRequest&)>;
// Asked about a request's head before its body is read: nothing lets it go on, a response is
// the answer instead. Runs on the connection's thread; must be cheap and must not throw.
using Admission = std::function<std::optional<HttpResponse>(const HttpRequest&)>;
// Called once per answered request (access log, metrics) with the record of what handled it:
// the request's own, or for a reused answer the record of the request it was made for.
using AccessHook = std::function<void(const HttpRequest&, const HttpResponse&, const AccessRecord&,
                                      std::chrono::microseconds)>;

class HttpServer {
 public:
  // Connections on `io`, which any number of threads may run (each connection on a strand).
  HttpServer(boost::asio::io_context& io, ServerLimits limits, RequestHandler handler,
             AccessHook on_response = {});
  // Each context run by exactly one thread: every context accepts from the listening socket
  // and keeps what it accepts (unless it serves clearly more connections than another, which
  // then gets it); a connection stays on its context, needs no strand, and its requests never
  // change threads.
  HttpServer(std::vector<boost::asio::io_context*> per_thread, ServerLimits limits,
             RequestHandler handler, AccessHook on_response = {});
  ~HttpServer();

  // Binds and starts accepting. `tls` null = plain HTTP. Returns the bound address ("ip:port",
  // useful with port 0). Throws std::runtime_error naming the address when it cannot bind.
  std::string listen(const config::ListenAddress& address,
                     std::shared_ptr<boost::asio::ssl::context> tls = nullptr);

  // Filters (net/filters.hpp), run in the order added; add them before listen(). Connection
  // filters run before the server's own per-client share, which counts the client they name.
  void add_connection_filter(std::unique_ptr<ConnectionFilter> filter);
  void add_request_filter(std::unique_ptr<RequestFilter> filter);
  // Asked about a request's head before its body is read (only when it has one): a response
  // answers it instead, and the body is never read (the admin listener's trust and token).
  void gate_bodies_with(Admission gate);

  // A reload's new limits: every size, wait and count above applies from each connection's next
  // request (or next accept) on. Thread-safe, and costs the requests nothing (relaxed atomics).
  void update_limits(const ServerLimits& limits);

  // Stops accepting and closes idle keep-alive connections; requests in flight finish.
  // Thread-safe.
  void stop();
  std::size_t active_connections() const { return active_->load(); }

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::shared_ptr<std::atomic<std::size_t>> active_;
};

}  // namespace hkpgw::gateway
