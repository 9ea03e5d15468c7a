#include "gateway/http_server.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ip/v6_only.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <algorithm>
#include <array>
#include <map>
#include <cctype>
#include <optional>

#include "gateway/log.hpp"

namespace hkpgw::gateway {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);
// After an early refusal (413, 431, 400), how much of the rest of the request is read and thrown
// away so that the client reads the answer instead of a reset.
constexpr std::size_t kMaxDrainBytes = 64 << 20;
constexpr std::chrono::milliseconds kMaxDrainTime{10000};

struct HttpServer::Impl {
  Impl(asio::io_context& i, ServerLimits l, RequestHandler h, AccessHook a)
      : io(i), limits(l), handler(std::move(h)), on_response(std::move(a)) {}

  asio::io_context& io;
  ServerLimits limits;
  RequestHandler handler;
  AccessHook on_response;
  std::shared_ptr<std::atomic<std::size_t>> active;

  std::mutex mutex;
  bool stopping = false;
  std::vector<std::shared_ptr<tcp::acceptor>> acceptors;
  std::uint64_t next_idle = 0;
  // Idle connections (waiting for a request), by the order they became idle -> how to close
  // them from any thread. The first one is the one idle longest.
  std::map<std::uint64_t, std::function<void()>> idle;
  // Connections per client (address, IPv6 by /64); entries go when their count reaches 0, so
  // there are never more than max_connections of them.
  std::unordered_map<std::string, std::size_t> per_client;

  asio::awaitable<void> accept_loop(std::shared_ptr<tcp::acceptor> acceptor,
                                    std::shared_ptr<asio::ssl::context> tls);
  template <class Stream>
  asio::awaitable<void> session(Stream stream, std::string peer, std::string client);
  // Returns the ticket to clear it with.
  std::uint64_t set_idle(std::function<void()> closer);
  void clear_idle(std::uint64_t ticket);
  // At max_connections: closes the connection idle longest; false when none is idle.
  bool evict_idle();
  bool admit_client(const std::string& client);
  void release_client(const std::string& client);
};

namespace {

http::response<http::string_body> to_beast(const HttpResponse& r, unsigned version,
                                           bool keep_alive) {
  http::response<http::string_body> res{static_cast<http::status>(r.status), version};
  res.set(http::field::server, "hkp-gateway");
  res.set("X-Content-Type-Options", "nosniff");
  res.set(http::field::content_type, r.content_type);
  for (const auto& [name, value] : r.headers) res.set(name, value);
  res.body() = r.body;
  res.keep_alive(keep_alive);
  res.prepare_payload();  // Content-Length, always (dirmngr has no chunked decoder)
  return res;
}

bool has_no_cache(const http::request<http::string_body>& req) {
  auto contains = [&](http::field f) {
    auto [first, last] = req.equal_range(f);
    for (auto it = first; it != last; ++it) {
      if (std::string_view(it->value()).find("no-cache") != std::string_view::npos) return true;
    }
    return false;
  };
  return contains(http::field::pragma) || contains(http::field::cache_control);
}

// "http://host:port/path?q" (absolute-form, as sent to a proxy) -> "/path?q".
std::string origin_form(std::string_view target) {
  if (target.starts_with("http://") || target.starts_with("https://")) {
    const auto slash = target.find('/', target.find("//") + 2);
    return slash == std::string_view::npos ? "/" : std::string(target.substr(slash));
  }
  return std::string(target);
}

// RFC 9112 section 6.1 and 6.3: a request body is framed by Content-Length or by a
// Transfer-Encoding whose last coding is chunked; we understand no other coding. Anything else
// could be read differently by a proxy in front of us (request smuggling): refused and closed.
std::optional<HttpResponse> check_framing(const http::request_parser<http::string_body>& parser) {
  const auto& h = parser.get();
  auto [first, last] = h.equal_range(http::field::transfer_encoding);
  if (first == last) return std::nullopt;
  std::string codings;
  for (auto it = first; it != last; ++it) {
    codings += (codings.empty() ? "" : ", ") + std::string(it->value());
  }
  std::string shown;
  for (const char c : codings.substr(0, 80)) shown.push_back(c >= 0x20 && c < 0x7f ? c : '?');
  if (!parser.chunked()) {
    return text_response(400, "Bad request: Transfer-Encoding \"" + shown +
                                  "\" does not end with chunked (RFC 9112 section 6.3)");
  }
  std::string lower;
  for (const char c : codings) {
    if (c != ' ' && c != '\t') lower.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
  }
  if (lower != "chunked") {
    return text_response(501, "Not implemented: Transfer-Encoding \"" + shown +
                                  "\": only chunked is supported");
  }
  if (h.count(http::field::content_length) > 0) {
    return text_response(400, "Bad request: both Content-Length and Transfer-Encoding "
                              "(RFC 9112 section 6.3)");
  }
  return std::nullopt;
}

// Whose connection this is, for the per-client limit: the IPv4 address, or the /64 of an IPv6
// one (a single host commonly holds a whole /64). IPv4-mapped IPv6 counts as IPv4.
std::string client_key(const asio::ip::address& a) {
  if (a.is_v6() && a.to_v6().is_v4_mapped()) {
    return asio::ip::make_address_v4(asio::ip::v4_mapped, a.to_v6()).to_string();
  }
  if (a.is_v4()) return a.to_string();
  auto bytes = a.to_v6().to_bytes();
  std::fill(bytes.begin() + 8, bytes.end(), 0);
  return asio::ip::address_v6(bytes).to_string() + "/64";
}

// "ip:port", IPv6 in brackets so the port cannot be read as part of the address.
std::string peer_text(const tcp::endpoint& ep) {
  const std::string a = ep.address().to_string();
  return (ep.address().is_v6() ? "[" + a + "]" : a) + ":" + std::to_string(ep.port());
}

auto& lowest(beast::tcp_stream& s) { return s; }
auto& lowest(beast::ssl_stream<beast::tcp_stream>& s) { return beast::get_lowest_layer(s); }

}  // namespace

std::uint64_t HttpServer::Impl::set_idle(std::function<void()> closer) {
  std::lock_guard lock(mutex);
  if (stopping) {
    closer();
    return 0;
  }
  const std::uint64_t ticket = ++next_idle;
  idle.emplace(ticket, std::move(closer));
  return ticket;
}

void HttpServer::Impl::clear_idle(std::uint64_t ticket) {
  std::lock_guard lock(mutex);
  idle.erase(ticket);
}

bool HttpServer::Impl::evict_idle() {
  std::function<void()> close;
  {
    std::lock_guard lock(mutex);
    if (idle.empty()) return false;
    close = std::move(idle.begin()->second);
    idle.erase(idle.begin());
  }
  close();
  return true;
}

bool HttpServer::Impl::admit_client(const std::string& client) {
  std::lock_guard lock(mutex);
  std::size_t& n = per_client[client];
  if (limits.max_per_client > 0 && n >= limits.max_per_client) {
    if (n == 0) per_client.erase(client);
    return false;
  }
  ++n;
  return true;
}

void HttpServer::Impl::release_client(const std::string& client) {
  std::lock_guard lock(mutex);
  auto it = per_client.find(client);
  if (it != per_client.end() && --it->second == 0) per_client.erase(it);
}

template <class Stream>
asio::awaitable<void> HttpServer::Impl::session(Stream stream, std::string peer,
                                                std::string client) {
  struct Count {
    Impl& impl;
    std::string client;
    ~Count() {
      --*impl.active;
      impl.release_client(client);
    }
  } count{*this, std::move(client)};
  auto& tcp_layer = lowest(stream);
  auto executor = co_await asio::this_coro::executor;
  // The closer may run after this session ended: it runs on the session's strand and checks
  // `alive`, which the session clears on that same strand before its frame goes away.
  auto alive = std::make_shared<bool>(true);
  struct Dead {
    std::shared_ptr<bool>& alive;
    ~Dead() { *alive = false; }
  } dead{alive};
  auto closer = [&tcp_layer, executor, alive] {
    asio::post(executor, [&tcp_layer, alive] {
      if (!*alive) return;
      beast::error_code ignored;
      tcp_layer.socket().shutdown(tcp::socket::shutdown_receive, ignored);
    });
  };

  bool tls_resumed = false;
  if constexpr (!std::is_same_v<Stream, beast::tcp_stream>) {
    tcp_layer.expires_after(limits.client_timeout);
    auto [ec] = co_await stream.async_handshake(asio::ssl::stream_base::server, kTuple);
    if (ec) co_return;  // failed handshakes are the client's business; nothing to answer
    tls_resumed = SSL_session_reused(stream.native_handle()) == 1;
  }

  beast::flat_buffer buffer;
  bool drain = false;  // an early answer: discard what the client still sends before closing
  while (true) {
    http::request_parser<http::string_body> parser;
    parser.header_limit(static_cast<std::uint32_t>(limits.max_header_bytes));
    parser.body_limit(limits.max_body_bytes);
    tcp_layer.expires_after(limits.client_timeout);
    const std::uint64_t idle_ticket = set_idle(closer);
    auto [ec, n] = co_await http::async_read_header(stream, buffer, parser, kTuple);
    clear_idle(idle_ticket);

    std::optional<HttpResponse> early;  // an answer decided before the handler runs
    if (ec == http::error::header_limit) {
      early = text_response(431, "Request header fields too large: the header exceeds " +
                                     std::to_string(limits.max_header_bytes) + " bytes");
    } else if (ec == http::error::body_limit) {  // Content-Length over the limit, seen early
      early = text_response(413, "Request body too large: the limit is " +
                                     std::to_string(limits.max_body_bytes) + " bytes");
    } else if (ec == http::error::end_of_stream || ec == beast::error::timeout ||
               ec == asio::error::connection_reset || ec == asio::error::eof ||
               ec == asio::ssl::error::stream_truncated || ec == asio::error::operation_aborted) {
      break;  // the client went away or idled out: close quietly
    } else if (ec) {
      early = text_response(400, "Bad request: malformed HTTP (" + ec.message() + ")");
    } else if (auto framing = check_framing(parser)) {
      early = std::move(framing);
    } else if (parser.get().count(http::field::host) > 1) {
      early = text_response(400, "Bad request: more than one Host header (RFC 9112 section 3.2)");
    } else if (parser.content_length() && *parser.content_length() > limits.max_body_bytes) {
      early = text_response(413, "Request body too large: " +
                                     std::to_string(*parser.content_length()) +
                                     " bytes, the limit is " +
                                     std::to_string(limits.max_body_bytes));
    } else if (!parser.is_done()) {
      tcp_layer.expires_after(limits.client_timeout);
      auto [bec, bn] = co_await http::async_read(stream, buffer, parser, kTuple);
      if (bec == http::error::body_limit) {
        early = text_response(413, "Request body too large: the limit is " +
                                       std::to_string(limits.max_body_bytes) + " bytes");
      } else if (bec == beast::error::timeout || bec == asio::error::connection_reset ||
                 bec == asio::error::eof || bec == http::error::end_of_stream ||
                 bec == http::error::partial_message || bec == asio::ssl::error::stream_truncated ||
                 bec == asio::error::operation_aborted) {
        break;  // the client went away mid-body: nobody to answer
      } else if (bec) {
        early = text_response(400, "Bad request: malformed body (" + bec.message() + ")");
      }
    }

    const auto started = std::chrono::steady_clock::now();
    HttpRequest req;
    req.peer = peer;
    req.tls_resumed = tls_resumed;
    unsigned version = 11;
    bool keep_alive = false;
    HttpResponse res;
    bool head = false;
    if (early) {
      res = std::move(*early);
      res.close = true;
      drain = true;
      // What the parser read of the request line, for the access log ("-" when nothing).
      req.method = std::string(parser.get().method_string());
      req.target = origin_form(parser.get().target());
      if (req.method.empty()) req.method = "-";
      if (req.target.empty()) req.target = "-";
      if (parser.is_header_done()) version = parser.get().version();
    } else {
      auto msg = parser.release();
      req.method = std::string(msg.method_string());
      req.target = origin_form(msg.target());
      req.version = msg.version();
      req.content_type = std::string(msg[http::field::content_type]);
      req.client_no_cache = has_no_cache(msg);
      req.authorization = std::string(msg[http::field::authorization]);
      req.host = std::string(msg[http::field::host]);
      req.body = std::move(msg.body());
      version = msg.version();
      keep_alive = msg.keep_alive();
      // HEAD is GET without the body (RFC 9110 section 9.3.2): same status and headers.
      head = req.method == "HEAD";
      if (head) req.method = "GET";
      try {
        res = co_await handler(req);
      } catch (const std::exception& e) {
        log::error("handler_exception", {{"what", e.what()}, {"target", req.target}});
        res = text_response(500, "Internal error");
      }
      if (head) req.method = "HEAD";
    }
    if (res.reset) {  // no answer at all: RST, as a crashing or hostile server would
      beast::error_code ignored;
      tcp_layer.socket().set_option(tcp::socket::linger(true, 0), ignored);
      tcp_layer.socket().close(ignored);
      co_return;
    }
    {
      std::lock_guard lock(mutex);
      keep_alive = keep_alive && !res.close && !stopping;
    }
    auto beast_res = to_beast(res, version, keep_alive);
    tcp_layer.expires_after(limits.client_timeout);
    beast::error_code wec;
    if (head) {
      http::response_serializer<http::string_body> header_only(beast_res);
      auto [hec, hn] = co_await http::async_write_header(stream, header_only, kTuple);
      wec = hec;
    } else {
      auto [bec, bn] = co_await http::async_write(stream, beast_res, kTuple);
      wec = bec;
    }
    if (on_response) {
      on_response(req, res,
                  std::chrono::duration_cast<std::chrono::microseconds>(
                      std::chrono::steady_clock::now() - started));
    }
    if (wec || !keep_alive) break;
  }

  if (drain) {
    // The request was refused before its body was read. Closing now, with the client still
    // sending, would make the kernel answer its next bytes with a reset, and the client would
    // see a broken pipe instead of our answer (gpg then marks the host dead). So: FIN, then read
    // and discard what it still sends, bounded in bytes and time, until it closes.
    beast::error_code ignored;
    tcp_layer.socket().shutdown(tcp::socket::shutdown_send, ignored);
    std::array<char, 16 << 10> sink;
    std::size_t discarded = 0;
    tcp_layer.expires_after(std::min<std::chrono::milliseconds>(limits.client_timeout, kMaxDrainTime));
    while (discarded < kMaxDrainBytes) {
      auto [dec, dn] = co_await tcp_layer.async_read_some(asio::buffer(sink), kTuple);
      if (dec) break;
      discarded += dn;
    }
    co_return;
  }

  // Orderly close: TLS close_notify (bounded), then FIN.
  if constexpr (!std::is_same_v<Stream, beast::tcp_stream>) {
    tcp_layer.expires_after(std::chrono::seconds(2));
    co_await stream.async_shutdown(kTuple);
  }
  beast::error_code ignored;
  tcp_layer.socket().shutdown(tcp::socket::shutdown_both, ignored);
}

asio::awaitable<void> HttpServer::Impl::accept_loop(std::shared_ptr<tcp::acceptor> acceptor,
                                                    std::shared_ptr<asio::ssl::context> tls) {
  std::atomic<bool> refusal_logged{false};
  while (true) {
    auto strand = asio::make_strand(io);
    auto [ec, socket] = co_await acceptor->async_accept(strand, kTuple);
    if (ec == asio::error::operation_aborted || !acceptor->is_open()) co_return;
    if (ec) {
      // EMFILE and friends: do not spin; try again shortly.
      log::warn("accept_failed", {{"error", ec.message()}});
      asio::steady_timer t(io, std::chrono::milliseconds(50));
      co_await t.async_wait(kTuple);
      continue;
    }
    beast::error_code pec;
    const auto ep = socket.remote_endpoint(pec);
    std::string client = pec ? "?" : client_key(ep.address());
    if (active->load() >= limits.max_connections && !evict_idle()) {
      beast::error_code ignored;
      socket.close(ignored);  // full of busy connections: refuse at once rather than queue
      continue;
    }
    if (!admit_client(client)) {
      beast::error_code ignored;
      socket.close(ignored);  // this client holds its share already
      if (!refusal_logged.exchange(true)) {
        log::warn("client_connection_limit",
                  {{"client", client},
                   {"limit", std::to_string(limits.max_per_client)},
                   {"effect", "further connections from it are closed at once (logged once)"}});
      }
      continue;
    }
    ++*active;
    std::string peer = pec ? "?" : peer_text(ep);
    if (tls) {
      beast::ssl_stream<beast::tcp_stream> stream(beast::tcp_stream(std::move(socket)), *tls);
      asio::co_spawn(strand, session(std::move(stream), std::move(peer), std::move(client)),
                     asio::detached);
    } else {
      asio::co_spawn(strand,
                     session(beast::tcp_stream(std::move(socket)), std::move(peer), std::move(client)),
                     asio::detached);
    }
  }
}

HttpServer::HttpServer(asio::io_context& io, ServerLimits limits, RequestHandler handler,
                       AccessHook on_response)
    : impl_(std::make_unique<Impl>(io, limits, std::move(handler), std::move(on_response))),
      active_(std::make_shared<std::atomic<std::size_t>>(0)) {
  impl_->active = active_;
}

HttpServer::~HttpServer() { stop(); }

std::string HttpServer::listen(const config::ListenAddress& address,
                               std::shared_ptr<asio::ssl::context> tls) {
  beast::error_code ec;
  const auto ip = asio::ip::make_address(address.host, ec);
  tcp::endpoint endpoint;
  if (ec) {
    tcp::resolver resolver(impl_->io);
    auto results = resolver.resolve(address.host, std::to_string(address.port), ec);
    if (ec || results.empty()) {
      throw std::runtime_error("cannot resolve listen address " + address.text() + ": " +
                               ec.message());
    }
    endpoint = results.begin()->endpoint();
  } else {
    endpoint = tcp::endpoint(ip, address.port);
  }
  auto acceptor = std::make_shared<tcp::acceptor>(impl_->io);
  acceptor->open(endpoint.protocol(), ec);
  if (!ec) acceptor->set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec && endpoint.address().is_v6()) acceptor->set_option(asio::ip::v6_only(true), ec);
  if (!ec) acceptor->bind(endpoint, ec);
  if (!ec) acceptor->listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    throw std::runtime_error("cannot listen on " + address.text() + ": " + ec.message());
  }
  const auto bound = acceptor->local_endpoint();
  {
    std::lock_guard lock(impl_->mutex);
    impl_->acceptors.push_back(acceptor);
  }
  asio::co_spawn(impl_->io, impl_->accept_loop(acceptor, std::move(tls)), asio::detached);
  return config::ListenAddress{bound.address().to_string(), bound.port()}.text();
}

void HttpServer::stop() {
  std::vector<std::shared_ptr<tcp::acceptor>> acceptors;
  std::map<std::uint64_t, std::function<void()>> idle;
  {
    std::lock_guard lock(impl_->mutex);
    if (impl_->stopping) return;
    impl_->stopping = true;
    acceptors.swap(impl_->acceptors);
    idle.swap(impl_->idle);
  }
  for (auto& a : acceptors) {
    asio::post(impl_->io, [a] {
      beast::error_code ignored;
      a->close(ignored);
    });
  }
  for (auto& [id, close] : idle) close();
}

}  // namespace hkpgw::gateway
