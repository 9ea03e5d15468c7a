#include "gateway/net/peer_client.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <ctime>

#include "gateway/net/cluster_auth.hpp"
#include "gateway/observe/version.hpp"

namespace hkpgw::gateway {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {
constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);
}  // namespace

asio::awaitable<PeerPush> post_to_peer(const config::ListenAddress& peer, PeerPost post,
                                       UpstreamLimits limits) {
  PeerPush out;
  const std::string where = peer.text();
  const auto executor = co_await asio::this_coro::executor;
  tcp::resolver resolver(executor);
  const std::string port = std::to_string(peer.port);
  auto [rec, endpoints] = co_await resolver.async_resolve(peer.host, port, kTuple);
  if (rec) {
    out.detail = "cannot resolve " + peer.host + ": " + rec.message();
    co_return out;
  }
  beast::tcp_stream stream(executor);
  stream.expires_after(limits.connect_timeout);
  auto [cec, connected] = co_await stream.async_connect(endpoints, kTuple);
  if (cec) {
    out.detail = "connect to " + where + ": " + cec.message();
    co_return out;
  }
  http::request<http::string_body> req{http::verb::post, std::string(post.target), 11};
  // The address connected to, as an IP literal: the admin listener answers those whatever
  // admin.allowed_hosts says (its check is against browsers sent there by DNS rebinding).
  const tcp::endpoint ep = connected;
  const std::string ip = ep.address().is_v6() ? "[" + ep.address().to_string() + "]"
                                              : ep.address().to_string();
  req.set(http::field::host, ip + ":" + port);
  req.set(http::field::user_agent, "hkp-gateway/" + std::string(kVersion) + " (cluster push)");
  req.set(http::field::content_type, std::string(post.content_type));
  req.body() = std::string(post.body);
  req.set(http::field::authorization,
          cluster_authorization(post.secret, "POST", post.target, post.body,
                                static_cast<std::uint64_t>(std::time(nullptr)), random_nonce()));
  req.prepare_payload();
  req.keep_alive(false);
  stream.expires_after(limits.request_timeout);
  auto [wec, wn] = co_await http::async_write(stream, req, kTuple);
  if (wec) {
    out.detail = "sending to " + where + ": " + wec.message();
    co_return out;
  }
  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(limits.max_response_bytes);
  auto [rdec, rn] = co_await http::async_read(stream, buffer, parser, kTuple);
  if (rdec) {
    out.detail = "no answer from " + where + ": " + rdec.message();
    co_return out;
  }
  out.status = parser.get().result_int();
  const std::string& body = parser.get().body();
  out.detail = body.substr(0, std::min<std::size_t>(body.find('\n'), 200));
  beast::error_code ignored;
  stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
  co_return out;
}

asio::awaitable<PeerPush> push_to_peer(const config::ListenAddress& peer, std::string_view packets,
                                       std::string_view secret, UpstreamLimits limits) {
  const PeerPost post{"/cluster/keys", "application/pgp-keys", packets, secret};
  PeerPush pushed = co_await post_to_peer(peer, post, limits);
  co_return pushed;
}

}  // namespace hkpgw::gateway
