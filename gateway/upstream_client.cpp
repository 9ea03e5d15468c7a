#include "gateway/upstream_client.hpp"

#include <openssl/ssl.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include "gateway/tls.hpp"

namespace hkpgw::gateway {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);
constexpr std::size_t kMaxIdlePerUpstream = 8;
constexpr std::string_view kUserAgent = "hkp-gateway/0.1";

// A connection and everything that touches it (its stream, its timers' handlers, the coroutine
// driving a request) live on one strand. Without that, Beast's timeout handler for a connection
// can run on another thread while the request coroutine uses the stream, and a racing close
// closes a descriptor number the kernel has already handed to another socket.
struct UpstreamClient::Connection {
  asio::any_io_executor strand;
  beast::ssl_stream<beast::tcp_stream> stream;
  beast::flat_buffer buffer;
  Connection(asio::any_io_executor s, asio::ssl::context& ctx) : strand(s), stream(s, ctx) {}
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
  }
  return "?";
}

bool is_failure(Outcome o) {
  return o == Outcome::timeout || o == Outcome::connect_error || o == Outcome::tls_error ||
         o == Outcome::http_error || o == Outcome::bad_response;
}

UpstreamClient::UpstreamClient(asio::any_io_executor executor, config::UpstreamConfig upstream,
                               const std::string& shared_ca_file)
    : executor_(std::move(executor)),
      upstream_(std::move(upstream)),
      tls_(make_client_tls({shared_ca_file, upstream_.ca_file})) {
  const auto& ep = upstream_.endpoint;
  const bool v6 = ep.host.find(':') != std::string::npos;
  host_header_ = v6 ? "[" + ep.host + "]" : ep.host;
  if (ep.port != 443) host_header_ += ":" + std::to_string(ep.port);
}

UpstreamClient::~UpstreamClient() = default;

std::unique_ptr<UpstreamClient::Connection> UpstreamClient::take_idle() {
  std::lock_guard lock(mutex_);
  if (idle_.empty()) return nullptr;
  auto c = std::move(idle_.back());
  idle_.pop_back();
  return c;
}

void UpstreamClient::give_back(std::unique_ptr<Connection> c) {
  std::lock_guard lock(mutex_);
  if (idle_.size() < kMaxIdlePerUpstream) idle_.push_back(std::move(c));
}

asio::awaitable<UpstreamResponse> UpstreamClient::get(std::string path_and_query,
                                                      UpstreamLimits limits) {
  const auto started = std::chrono::steady_clock::now();
  const std::string target = upstream_.endpoint.base_path + path_and_query;
  auto run_on_strand = [&](std::unique_ptr<Connection> conn) {
    asio::any_io_executor strand = conn ? conn->strand : asio::make_strand(executor_);
    return asio::co_spawn(strand, attempt(target, limits, std::move(conn), strand),
                          asio::use_awaitable);
  };
  std::unique_ptr<Connection> idle = take_idle();
  const bool reused = idle != nullptr;
  UpstreamResponse r = co_await run_on_strand(std::move(idle));
  // A kept-alive connection may have been closed by the server meanwhile (write fails, or the
  // read sees EOF/reset): one retry on a fresh connection. Never for an answer we got.
  if (reused && r.outcome == Outcome::connect_error) {
    r = co_await run_on_strand(nullptr);
  }
  r.elapsed = std::chrono::duration_cast<std::chrono::microseconds>(
      std::chrono::steady_clock::now() - started);
  co_return r;
}

asio::awaitable<UpstreamResponse> UpstreamClient::attempt(std::string target,
                                                          UpstreamLimits limits,
                                                          std::unique_ptr<Connection> conn,
                                                          asio::any_io_executor strand) {
  UpstreamResponse r;
  const auto& ep = upstream_.endpoint;
  if (!conn) {
    conn = std::make_unique<Connection>(strand, *tls_);
    auto& tcp_layer = beast::get_lowest_layer(conn->stream);
    tcp::resolver resolver(strand);
    auto [rec, endpoints] =
        co_await resolver.async_resolve(ep.host, std::to_string(ep.port), kTuple);
    if (rec) {
      r.outcome = Outcome::connect_error;
      r.detail = "cannot resolve " + ep.host + ": " + rec.message();
      co_return r;
    }
    tcp_layer.expires_after(limits.connect_timeout);
    auto [cec, connected] = co_await tcp_layer.async_connect(endpoints, kTuple);
    if (cec) {
      r.outcome = cec == beast::error::timeout ? Outcome::timeout : Outcome::connect_error;
      r.detail = "connect to " + ep.host + ":" + std::to_string(ep.port) + ": " + cec.message();
      co_return r;
    }
    // SNI (never for IP literals) and host name verification against the certificate.
    beast::error_code ignored;
    const bool is_ip = (asio::ip::make_address(ep.host, ignored), !ignored);
    if (!is_ip) SSL_set_tlsext_host_name(conn->stream.native_handle(), ep.host.c_str());
    conn->stream.set_verify_callback(asio::ssl::host_name_verification(ep.host));
    auto [hec] = co_await conn->stream.async_handshake(asio::ssl::stream_base::client, kTuple);
    if (hec) {
      r.outcome = hec == beast::error::timeout ? Outcome::timeout : Outcome::tls_error;
      r.detail = "TLS with " + ep.host + ": " + hec.message();
      co_return r;
    }
  }
  auto& tcp_layer = beast::get_lowest_layer(conn->stream);

  http::request<http::empty_body> req{http::verb::get, target, 11};
  req.set(http::field::host, host_header_);
  req.set(http::field::user_agent, kUserAgent);
  req.set(http::field::accept, "*/*");
  req.keep_alive(true);
  tcp_layer.expires_after(limits.request_timeout);  // one deadline for write + whole response
  auto [wec, wn] = co_await http::async_write(conn->stream, req, kTuple);
  if (wec) {
    r.outcome = wec == beast::error::timeout ? Outcome::timeout : Outcome::connect_error;
    r.detail = "sending to " + upstream_.name + ": " + wec.message();
    co_return r;
  }
  http::response_parser<http::string_body> parser;
  parser.body_limit(limits.max_response_bytes);
  auto [rec, rn] = co_await http::async_read(conn->stream, conn->buffer, parser, kTuple);
  if (rec) {
    if (rec == beast::error::timeout) {
      r.outcome = Outcome::timeout;
      r.detail = "no answer from " + upstream_.name + " within " +
                 std::to_string(limits.request_timeout.count()) + "ms";
    } else if (rec == http::error::body_limit) {
      r.outcome = Outcome::bad_response;
      r.detail = "answer from " + upstream_.name + " over " +
                 std::to_string(limits.max_response_bytes) + " bytes";
    } else if (rec == http::error::end_of_stream || rec == asio::error::eof ||
               rec == asio::error::connection_reset || rec == asio::ssl::error::stream_truncated) {
      r.outcome = Outcome::connect_error;
      r.detail = upstream_.name + " closed the connection: " + rec.message();
    } else {
      r.outcome = Outcome::bad_response;
      r.detail = "malformed answer from " + upstream_.name + ": " + rec.message();
    }
    co_return r;
  }
  auto res = parser.release();
  r.status = res.result_int();
  r.body = std::move(res.body());
  if (r.status == 200) {
    r.outcome = Outcome::ok;
  } else if (r.status == 404) {
    r.outcome = Outcome::not_found;
  } else {
    r.outcome = Outcome::http_error;
    r.detail = upstream_.name + " answered HTTP " + std::to_string(r.status);
  }
  if (res.keep_alive()) {
    give_back(std::move(conn));
  }
  co_return r;
}

}  // namespace hkpgw::gateway
