// A TLS terminator for tests: accepts TLS on loopback (certificate from the test CA) and relays
// the plain bytes to a TCP address, both ways, until either side closes. Puts a keyserver that
// only speaks plain HTTP (sks from Debian) behind HTTPS, the only thing the gateway talks to.
//   tls-relay --cert FILE --key FILE --to 127.0.0.1:PORT
// Prints "tls=ADDR" on stdout once listening; stops on SIGTERM.
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <iostream>

#include "gateway/net/tls.hpp"

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);

template <class From, class To>
asio::awaitable<void> pump(From& from, To& to) {
  std::array<char, 16384> buf;
  while (true) {
    auto [rec, n] = co_await from.async_read_some(asio::buffer(buf), kTuple);
    if (rec || n == 0) break;
    auto [wec, w] = co_await asio::async_write(to, asio::buffer(buf.data(), n), kTuple);
    if (wec) break;
  }
}

asio::awaitable<void> relay(tcp::socket client, std::shared_ptr<asio::ssl::context> tls,
                            tcp::endpoint target) {
  auto tls_stream = std::make_shared<asio::ssl::stream<tcp::socket>>(std::move(client), *tls);
  auto [hec] = co_await tls_stream->async_handshake(asio::ssl::stream_base::server, kTuple);
  if (hec) co_return;
  auto upstream = std::make_shared<tcp::socket>(tls_stream->get_executor());
  auto [cec] = co_await upstream->async_connect(target, kTuple);
  if (cec) co_return;
  auto ex = tls_stream->get_executor();
  // Server to client in its own coroutine; when the server closes, close the TLS side too.
  asio::co_spawn(
      ex,
      [tls_stream, upstream]() -> asio::awaitable<void> {
        co_await pump(*upstream, *tls_stream);
        boost::system::error_code ignored;
        co_await tls_stream->async_shutdown(kTuple);
        tls_stream->lowest_layer().close(ignored);
      },
      asio::detached);
  co_await pump(*tls_stream, *upstream);
  boost::system::error_code ignored;
  upstream->shutdown(tcp::socket::shutdown_send, ignored);
}

int main(int argc, char** argv) {
  std::string cert, key, to;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    if (a == "--cert") cert = argv[i + 1];
    else if (a == "--key") key = argv[i + 1];
    else if (a == "--to") to = argv[i + 1];
  }
  const auto colon = to.rfind(':');
  if (cert.empty() || key.empty() || colon == std::string::npos) {
    std::cerr << "usage: tls-relay --cert FILE --key FILE --to HOST:PORT\n";
    return 2;
  }
  const tcp::endpoint target(asio::ip::make_address(to.substr(0, colon)),
                             static_cast<unsigned short>(std::stoi(to.substr(colon + 1))));
  asio::io_context io(1);
  auto tls = hkpgw::gateway::make_server_tls(cert, key);
  tcp::acceptor acceptor(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  std::cout << "tls=127.0.0.1:" << acceptor.local_endpoint().port() << std::endl;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        while (true) {
          auto [ec, sock] = co_await acceptor.async_accept(kTuple);
          if (ec) co_return;
          asio::co_spawn(io, relay(std::move(sock), tls, target), asio::detached);
        }
      },
      asio::detached);
  asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](auto, int) { io.stop(); });
  io.run();
  return 0;
}
