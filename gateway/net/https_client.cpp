#include "gateway/net/https_client.hpp"

#include <openssl/ssl.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include <deque>
#include <optional>

#include "gateway/net/tls.hpp"

namespace hkpgw::gateway {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using SteadyTime = std::chrono::steady_clock::time_point;
constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);
constexpr std::string_view kUserAgent = "hkp-gateway/0.1";

// The connections to one upstream: at most `max` exist (in use or idle). A request takes an idle
// one, or a free slot to open a new one, or waits (until its deadline) for whichever comes first:
// a connection handed back or a slot freed by a closed one. Waiters park on a timer that expires at
// their deadline and are woken by cancelling it; each waits on a strand of its own, where it
// registers before it starts waiting, so the wake-up cannot slip in between.
class HttpsClient::Pool {
 public:
  explicit Pool(std::size_t max) : free_(max), max_(max) {}

  struct Lease {
    bool ok = false;                   // false: nothing became available before the deadline
    std::shared_ptr<Connection> conn;  // an idle connection to reuse; null = open a new one
  };

  asio::awaitable<Lease> acquire(asio::any_io_executor executor, SteadyTime deadline) {
    {
      std::lock_guard lock(mutex_);
      if (auto l = take_locked()) co_return *l;
    }
    // Named operands around co_await throughout: GCC 12 destroys temporaries that live across a
    // suspension twice.
    auto strand = asio::make_strand(executor);
    auto waiting = wait_turn(deadline);
    Lease lease = co_await asio::co_spawn(strand, std::move(waiting), asio::use_awaitable);
    co_return lease;
  }

  // A request is done with a healthy connection: the oldest waiter gets it, or it goes idle.
  void give_back(std::shared_ptr<Connection> c) {
    std::lock_guard lock(mutex_);
    if (waiters_.empty()) {
      idle_.push_back(std::move(c));
      return;
    }
    wake_locked(std::move(c));
  }

  // A connection closed (its destructor): its slot goes to the oldest waiter, or back.
  void release_slot() {
    std::lock_guard lock(mutex_);
    if (waiters_.empty()) {
      ++free_;
      return;
    }
    wake_locked(nullptr);
  }

  std::size_t open() const {
    std::lock_guard lock(mutex_);
    return max_ - free_;
  }

 private:
  struct Waiter {
    explicit Waiter(asio::any_io_executor ex) : timer(std::move(ex)) {}
    asio::steady_timer timer;
    std::optional<Lease> lease;
  };

  std::optional<Lease> take_locked() {
    if (!idle_.empty()) {
      Lease l{true, std::move(idle_.back())};
      idle_.pop_back();
      return l;
    }
    if (free_ > 0) {
      --free_;
      return Lease{true, nullptr};
    }
    return std::nullopt;
  }

  void wake_locked(std::shared_ptr<Connection> c) {
    auto w = std::move(waiters_.front());
    waiters_.pop_front();
    w->lease = Lease{true, std::move(c)};
    asio::post(w->timer.get_executor(), [w] { w->timer.cancel(); });
  }

  asio::awaitable<Lease> wait_turn(SteadyTime deadline) {
    auto executor = co_await asio::this_coro::executor;
    auto w = std::make_shared<Waiter>(executor);
    {
      std::lock_guard lock(mutex_);
      if (auto l = take_locked()) co_return *l;  // freed since the first look
      w->timer.expires_at(deadline);
      waiters_.push_back(w);
    }
    co_await w->timer.async_wait(kTuple);
    std::lock_guard lock(mutex_);
    if (w->lease) co_return std::move(*w->lease);
    std::erase(waiters_, w);
    co_return Lease{};
  }

  mutable std::mutex mutex_;
  std::size_t free_;
  const std::size_t max_;
  std::vector<std::shared_ptr<Connection>> idle_;
  std::deque<std::shared_ptr<Waiter>> waiters_;
};

// A connection and everything that touches it (its stream, its timers' handlers, the coroutine
// driving a request) live on one strand. Without that, Beast's timeout handler for a connection
// can run on another thread while the request coroutine uses the stream, and a racing close
// closes a descriptor number the kernel has already handed to another socket.
// Each connection holds one of its upstream's pool slots for its whole life, idle time included.
struct HttpsClient::Connection {
  asio::any_io_executor strand;
  beast::ssl_stream<beast::tcp_stream> stream;
  beast::flat_buffer buffer;
  std::shared_ptr<Pool> pool;
  Connection(asio::any_io_executor s, asio::ssl::context& ctx, std::shared_ptr<Pool> p)
      : strand(s), stream(s, ctx), pool(std::move(p)) {}
  ~Connection() { pool->release_slot(); }
};

const char* outcome_name(Outcome o) {
  switch (o) {
    case Outcome::ok: return "ok";
    case Outcome::not_found: return "not_found";
    case Outcome::timeout: return "timeout";
    case Outcome::connect_error: return "connect_error";
    case Outcome::tls_error: return "tls_error";
    case Outcome::http_error: return "http_error";
    case Outcome::bad_response: return "bad_response";
    case Outcome::busy: return "busy";
    case Outcome::cancelled: return "cancelled";
  }
  return "?";
}

void CancelToken::cancel() {
  std::function<void()> fn;
  {
    std::lock_guard lock(mutex_);
    if (cancelled_.exchange(true)) return;
    fn = std::move(fn_);
  }
  if (fn) fn();
}

void CancelToken::on_cancel(std::function<void()> fn) {
  {
    std::lock_guard lock(mutex_);
    if (!cancelled_) {
      fn_ = std::move(fn);
      return;
    }
  }
  if (fn) fn();
}

HttpsClient::HttpsClient(asio::any_io_executor executor, HttpsClientOptions options)
    : executor_(std::move(executor)), options_(std::move(options)) {
  options_.max_connections = std::max(1u, options_.max_connections);
  tls_ = options_.tls ? options_.tls : make_client_tls(options_.ca_files);
  pool_ = std::make_shared<Pool>(options_.max_connections);
  const auto& ep = options_.endpoint;
  const bool v6 = ep.host.find(':') != std::string::npos;
  host_header_ = v6 ? "[" + ep.host + "]" : ep.host;
  if (ep.port != 443) host_header_ += ":" + std::to_string(ep.port);
}

HttpsClient::~HttpsClient() {
  if (session_) SSL_SESSION_free(session_);
}

std::size_t HttpsClient::open_connections() const { return pool_->open(); }

// Sessions are kept and handed out as private copies. OpenSSL marks a connection's session "not
// resumable" when the connection is freed without a close_notify (every dropped keep-alive
// connection, every connection the server closed first); a shared session object would be
// poisoned that way, and no reconnect would ever resume.
void HttpsClient::remember_session(SSL_SESSION* s) {
  if (!s) return;
  SSL_SESSION* copy = SSL_SESSION_is_resumable(s) ? SSL_SESSION_dup(s) : nullptr;
  SSL_SESSION_free(s);
  if (!copy) return;
  std::lock_guard lock(mutex_);
  if (session_) SSL_SESSION_free(session_);
  session_ = copy;
}

SSL_SESSION* HttpsClient::saved_session() {
  std::lock_guard lock(mutex_);
  return session_ ? SSL_SESSION_dup(session_) : nullptr;
}

asio::awaitable<UpstreamResponse> HttpsClient::get(std::string path_and_query,
                                                      UpstreamLimits limits,
                                                      std::shared_ptr<CancelToken> cancel) {
  Request req{false, options_.endpoint.base_path + path_and_query, {}, {}};
  UpstreamResponse r = co_await send(std::move(req), limits, std::move(cancel));
  co_return r;
}

asio::awaitable<UpstreamResponse> HttpsClient::post(std::string path, std::string body,
                                                       std::string_view content_type,
                                                       UpstreamLimits limits) {
  Request req{true, options_.endpoint.base_path + path, std::move(body), content_type};
  UpstreamResponse r = co_await send(std::move(req), limits, nullptr);
  co_return r;
}

asio::awaitable<UpstreamResponse> HttpsClient::send(Request request, UpstreamLimits limits,
                                                       std::shared_ptr<CancelToken> cancel) {
  const auto started = std::chrono::steady_clock::now();
  UpstreamResponse r;
  // A kept-alive connection may have been closed by the server meanwhile (write fails, or the
  // read sees EOF/reset): one retry on a fresh connection. Never for an answer we got.
  for (bool fresh_only = false;; fresh_only = true) {
    Pool::Lease lease = co_await pool_->acquire(executor_, started + limits.request_timeout);
    if (lease.ok && fresh_only && lease.conn) {
      lease.conn.reset();  // an idle one may be just as stale: close it, use its slot
      lease = co_await pool_->acquire(executor_, started + limits.request_timeout);
    }
    if (!lease.ok) {
      r = UpstreamResponse{};
      r.outcome = Outcome::busy;
      r.detail = "all " + std::to_string(options_.max_connections) + " connections to " +
                 options_.name + " stayed busy for " +
                 std::to_string(limits.request_timeout.count()) + "ms";
      break;
    }
    const bool reused = lease.conn != nullptr;
    auto conn = lease.conn ? std::move(lease.conn)
                           : std::make_shared<Connection>(asio::make_strand(executor_), *tls_, pool_);
    const auto strand = conn->strand;
    auto op = attempt(request, limits, std::move(conn), cancel);
    r = co_await asio::co_spawn(strand, std::move(op), asio::use_awaitable);
    const bool retry = reused && r.outcome == Outcome::connect_error && (!request.post || !r.sent);
    if (!retry || fresh_only) break;
  }
  r.elapsed = std::chrono::duration_cast<std::chrono::microseconds>(
      std::chrono::steady_clock::now() - started);
  co_return r;
}

namespace {

bool withdrawn(const std::shared_ptr<CancelToken>& cancel) { return cancel && cancel->cancelled(); }

UpstreamResponse result(Outcome outcome, std::string detail) {
  UpstreamResponse r;
  r.outcome = outcome;
  r.detail = std::move(detail);
  return r;
}

// The one mapping of an I/O error: a deadline that passed is a timeout whatever the step was;
// anything else is `otherwise`.
UpstreamResponse io_failure(const beast::error_code& ec, Outcome otherwise, const std::string& what) {
  return result(ec == beast::error::timeout ? Outcome::timeout : otherwise, what + ": " + ec.message());
}

// Reading the answer has more ways to fail than the other steps.
UpstreamResponse read_failure(const beast::error_code& ec, const std::string& name,
                              const UpstreamLimits& limits) {
  if (ec == beast::error::timeout) {
    return result(Outcome::timeout, "no answer from " + name + " within " +
                                        std::to_string(limits.request_timeout.count()) + "ms");
  }
  if (ec == http::error::body_limit) {
    return result(Outcome::bad_response, "answer from " + name + " over " +
                                             std::to_string(limits.max_response_bytes) + " bytes");
  }
  if (ec == http::error::end_of_stream || ec == asio::error::eof ||
      ec == asio::error::connection_reset || ec == asio::ssl::error::stream_truncated) {
    return result(Outcome::connect_error, name + " closed the connection: " + ec.message());
  }
  return result(Outcome::bad_response, "malformed answer from " + name + ": " + ec.message());
}

std::chrono::seconds retry_after_seconds(std::string_view v) {
  constexpr std::int64_t kDay = 86400;
  std::int64_t n = 0;
  std::size_t digits = 0;
  for (char c : v) {
    if (c < '0' || c > '9') return std::chrono::seconds(60);
    n = std::min<std::int64_t>(n * 10 + (c - '0'), kDay);
    ++digits;
  }
  return std::chrono::seconds(digits ? n : 0);
}

UpstreamResponse from_status(unsigned status, std::string body, const std::string& name) {
  UpstreamResponse r;
  r.status = status;
  r.body = std::move(body);
  r.outcome = status == 200   ? Outcome::ok
              : status == 404 ? Outcome::not_found
                              : Outcome::http_error;
  if (r.outcome == Outcome::http_error) r.detail = name + " answered HTTP " + std::to_string(status);
  return r;
}

}  // namespace

asio::awaitable<UpstreamResponse> HttpsClient::attempt(Request request, UpstreamLimits limits,
                                                       std::shared_ptr<Connection> conn,
                                                       std::shared_ptr<CancelToken> cancel) {
  const UpstreamResponse cancelled =
      result(Outcome::cancelled, "request to " + options_.name + " withdrawn");
  if (withdrawn(cancel)) co_return cancelled;
  // Cancellation aborts whatever I/O the connection has in flight, on its strand.
  if (cancel) {
    cancel->on_cancel([weak = std::weak_ptr<Connection>(conn), strand = conn->strand] {
      asio::post(strand, [weak] {
        if (auto c = weak.lock()) beast::get_lowest_layer(c->stream).cancel();
      });
    });
  }
  struct Disarm {  // the token must not keep pointing at this request once it is over
    std::shared_ptr<CancelToken> t;
    ~Disarm() {
      if (t) t->on_cancel({});
    }
  } disarm{cancel};

  const bool fresh = !SSL_is_init_finished(conn->stream.native_handle());
  if (fresh) {
    std::optional<UpstreamResponse> failed = co_await open(*conn, limits, cancel);
    if (withdrawn(cancel)) co_return cancelled;
    if (failed) co_return std::move(*failed);
  }
  Exchanged x = co_await exchange(*conn, std::move(request), limits);
  if (withdrawn(cancel)) co_return cancelled;
  if (x.response.status == 0) co_return std::move(x.response);  // no answer
  // TLS 1.3 tickets arrive after the handshake, so the session is worth saving only now.
  if (fresh) remember_session(SSL_get1_session(conn->stream.native_handle()));
  if (x.keep_alive) pool_->give_back(std::move(conn));
  co_return std::move(x.response);
}

asio::awaitable<std::optional<UpstreamResponse>> HttpsClient::open(Connection& conn,
                                                                   UpstreamLimits limits,
                                                                   std::shared_ptr<CancelToken> cancel) {
  const auto& ep = options_.endpoint;
  auto& tcp_layer = beast::get_lowest_layer(conn.stream);
  SSL* ssl = conn.stream.native_handle();
  tcp::resolver resolver(conn.strand);
  // Pinned (upstreams.resolve): a literal, no DNS; the name below is still what TLS checks.
  const bool pinned = !options_.connect_address.empty();
  const std::string& where = pinned ? options_.connect_address : ep.host;
  const auto flags = pinned ? tcp::resolver::numeric_host : tcp::resolver::flags();
  const std::uint16_t port = options_.connect_port ? options_.connect_port : ep.port;
  auto [rec, endpoints] =
      co_await resolver.async_resolve(where, std::to_string(port), flags, kTuple);
  if (rec) co_return result(Outcome::connect_error, "cannot resolve " + where + ": " + rec.message());
  if (withdrawn(cancel)) co_return std::nullopt;
  std::vector<tcp::endpoint> allowed;
  std::string refused;
  for (const auto& e : endpoints) {
    if (pinned || !options_.allow_address || options_.allow_address(e.endpoint().address())) {
      allowed.push_back(e.endpoint());
    } else if (refused.size() < 200) {
      refused += (refused.empty() ? "" : ", ") + e.endpoint().address().to_string();
    }
  }
  if (allowed.empty()) {
    co_return result(Outcome::connect_error,
                     "refused: " + where + " resolves only to non-public addresses (" + refused +
                         ")");
  }
  tcp_layer.expires_after(limits.connect_timeout);
  auto [cec, connected] = co_await tcp_layer.async_connect(allowed, kTuple);
  if (cec) {
    co_return io_failure(cec, Outcome::connect_error,
                         "connect to " + ep.host + ":" + std::to_string(ep.port) +
                             (pinned ? " at " + where + ":" + std::to_string(port) : ""));
  }
  if (withdrawn(cancel)) co_return std::nullopt;
  // SNI (never for IP literals) and host name verification against the certificate. A saved
  // session comes from a verified connection to this same upstream.
  beast::error_code ignored;
  const bool is_ip = (asio::ip::make_address(ep.host, ignored), !ignored);
  if (!is_ip) SSL_set_tlsext_host_name(ssl, ep.host.c_str());
  conn.stream.set_verify_callback(asio::ssl::host_name_verification(ep.host));
  if (SSL_SESSION* s = saved_session()) {
    SSL_set_session(ssl, s);
    SSL_SESSION_free(s);
  }
  auto [hec] = co_await conn.stream.async_handshake(asio::ssl::stream_base::client, kTuple);
  if (hec) co_return io_failure(hec, Outcome::tls_error, "TLS with " + ep.host);
  if (SSL_session_reused(ssl) == 1) ++resumed_;
  co_return std::nullopt;
}

asio::awaitable<HttpsClient::Exchanged> HttpsClient::exchange(Connection& conn, Request request,
                                                        UpstreamLimits limits) {
  http::request<http::string_body> req{request.post ? http::verb::post : http::verb::get,
                                       request.target, 11};
  req.set(http::field::host, host_header_);
  req.set(http::field::user_agent, kUserAgent);
  req.set(http::field::accept, "*/*");
  if (request.post) {
    req.set(http::field::content_type, request.content_type);
    req.body() = std::move(request.body);
    req.prepare_payload();
  }
  req.keep_alive(true);
  beast::get_lowest_layer(conn.stream).expires_after(limits.request_timeout);
  auto [wec, wn] = co_await http::async_write(conn.stream, req, kTuple);
  Exchanged x;
  if (wec) {
    x.response = io_failure(wec, Outcome::connect_error, "sending to " + options_.name);
    co_return x;
  }
  http::response_parser<http::string_body> parser;
  parser.body_limit(limits.max_response_bytes);
  auto [rec, rn] = co_await http::async_read(conn.stream, conn.buffer, parser, kTuple);
  if (rec) {
    x.response = read_failure(rec, options_.name, limits);
  } else {
    auto res = parser.release();
    x.keep_alive = res.keep_alive();
    const auto retry = res.find(http::field::retry_after);
    x.response = from_status(res.result_int(), std::move(res.body()), options_.name);
    if (retry != res.end()) x.response.retry_after = retry_after_seconds(retry->value());
  }
  x.response.sent = true;
  co_return x;
}

}  // namespace hkpgw::gateway
