// HTTPS client for one server (an upstream keyserver): transport only, no protocol and no health
// (upstream/ builds on it). Always TLS 1.2+, SNI set, peer certificate and host name verified
// (system store plus the configured CA files).
//
// Connections: at most `max_connections` per upstream, idle keep-alive ones included; a request
// beyond that waits for a free one until its deadline. A connection that has gone idle is reused,
// and a connection error on a reused one is retried once on a fresh one. A new connection
// resumes the last TLS session with this upstream (no full handshake) when the server allows it.
//
// Never throws from get(): every failure is an Outcome, which the caller turns into failover and
// health bookkeeping (upstream/health.hpp). A request can be cancelled from any thread (hedging cancels the loser).
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/address.hpp>
#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "config/config.hpp"
#include <optional>

namespace boost::asio::ssl {
class context;
}
struct ssl_session_st;

namespace hkpgw::gateway {

enum class Outcome {
  ok,             // 200 with a body
  not_found,      // 404: the upstream does not have it
  timeout,        // connect, TLS or response deadline passed
  connect_error,  // DNS, refused, reset
  tls_error,      // handshake failed: certificate not trusted, wrong host name, protocol
  http_error,     // 5xx or another unexpected status
  bad_response,   // malformed HTTP, too large, or content that does not hold up
  busy,           // every connection to this upstream stayed in use until the deadline (ours)
  cancelled,      // we withdrew the request (a hedge partner answered first)
};

const char* outcome_name(Outcome o);

struct UpstreamResponse {
  Outcome outcome = Outcome::connect_error;
  unsigned status = 0;
  std::string body;
  std::string detail;  // one line for logs and the 503 message
  std::chrono::microseconds elapsed{0};
  bool sent = false;         // the request was written completely (the server may have acted)
  // The server's Retry-After (RFC 9110 section 10.2.3), at most a day; 0 when it sent none. A
  // date instead of seconds counts as a minute.
  std::chrono::seconds retry_after{0};
};

struct UpstreamLimits {
  std::chrono::milliseconds connect_timeout{3000};
  std::chrono::milliseconds request_timeout{10000};
  std::size_t max_response_bytes = 8 << 20;
};

// Withdraws a request in flight from any thread. Cheap; one per request that may be cancelled.
class CancelToken {
 public:
  void cancel();
  bool cancelled() const { return cancelled_.load(); }
  // The request in flight registers how to abort its current I/O; runs at once if already
  // cancelled. Cleared with an empty function when the request is done.
  void on_cancel(std::function<void()> fn);

 private:
  std::mutex mutex_;
  std::atomic<bool> cancelled_{false};
  std::function<void()> fn_;
};

// Where and how to connect.
struct HttpsClientOptions {
  std::string name;  // in messages ("no answer from NAME within ...")
  config::UpstreamUrl endpoint;
  std::vector<std::string> ca_files;  // extra trust anchors besides the system store; "" skipped
  unsigned max_connections = 8;
  // An IP address (and port, when not 0) to connect to instead of resolving endpoint.host
  // (upstreams.resolve); the TLS name sent and verified stays endpoint.host.
  std::string connect_address;
  std::uint16_t connect_port = 0;
  // The TLS context to use (shared by many clients: one per client costs a load of the system CA
  // store, ~50 ms); null: one of its own from ca_files.
  std::shared_ptr<boost::asio::ssl::context> tls;
  // When set, the resolved addresses it refuses are never connected to (a name resolving only
  // to those fails with connect_error, naming them). Not asked for connect_address: the
  // operator pinned that.
  std::function<bool(const boost::asio::ip::address&)> allow_address;
};

class HttpsClient {
 public:
  // Throws std::runtime_error when a CA file cannot be loaded.
  HttpsClient(boost::asio::any_io_executor executor, HttpsClientOptions options);
  ~HttpsClient();
  HttpsClient(const HttpsClient&) = delete;
  HttpsClient& operator=(const HttpsClient&) = delete;

  const HttpsClientOptions& options() const { return options_; }

  // GET base_path + path_and_query. Thread-safe; many requests may run at once.
  boost::asio::awaitable<UpstreamResponse> get(std::string path_and_query, UpstreamLimits limits,
                                               std::shared_ptr<CancelToken> cancel = nullptr);
  // POST base_path + path with a body of `content_type` (static text: a form for /pks/add, JSON
  // for VKS). Never retried on a fresh connection once the request may have been sent: a key
  // submission is not repeated behind the caller's back.
  boost::asio::awaitable<UpstreamResponse> post(std::string path, std::string body,
                                                std::string_view content_type,
                                                UpstreamLimits limits);

  // Connections open right now (in use or idle), and how many handshakes were resumed.
  std::size_t open_connections() const;
  std::uint64_t resumed_handshakes() const { return resumed_.load(); }

 private:
  struct Connection;
  class Pool;
  struct Request {
    bool post = false;
    std::string target;
    std::string body;  // for POST
    std::string_view content_type;  // for POST; static text
  };
  struct Exchanged {
    UpstreamResponse response;
    bool keep_alive = false;
  };
  boost::asio::awaitable<UpstreamResponse> send(Request request, UpstreamLimits limits,
                                                std::shared_ptr<CancelToken> cancel);
  // One try on one connection: open it if new, then exchange.
  boost::asio::awaitable<UpstreamResponse> attempt(Request request, UpstreamLimits limits,
                                                   std::shared_ptr<Connection> conn,
                                                   std::shared_ptr<CancelToken> cancel);
  // Resolve, connect, TLS handshake (resuming the saved session); the failure, or nullopt.
  boost::asio::awaitable<std::optional<UpstreamResponse>> open(Connection& conn,
                                                               UpstreamLimits limits,
                                                               std::shared_ptr<CancelToken> cancel);
  // Writes the request and reads the whole answer, under one deadline.
  boost::asio::awaitable<Exchanged> exchange(Connection& conn, Request request,
                                             UpstreamLimits limits);
  void remember_session(ssl_session_st* s);
  ssl_session_st* saved_session();  // a new reference, or null

  boost::asio::any_io_executor executor_;
  HttpsClientOptions options_;
  std::shared_ptr<boost::asio::ssl::context> tls_;
  std::string host_header_;
  std::shared_ptr<Pool> pool_;
  std::mutex mutex_;  // guards session_
  ssl_session_st* session_ = nullptr;  // last resumable TLS session, owned
  std::atomic<std::uint64_t> resumed_{0};
};

}  // namespace hkpgw::gateway
