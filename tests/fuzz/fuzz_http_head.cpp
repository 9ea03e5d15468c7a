// HTTP requests through the real server code (HttpServer's session: Beast's parser, our limits,
// framing checks, drain and keep-alive), over loopback: one connection per input, half-closed
// after the bytes are sent. Whatever comes back is HTTP, and the server keeps serving.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <chrono>
#include <cstdint>
#include <string>
#include <thread>

#include "gateway/net/http_server.hpp"

namespace {

struct Server {
  boost::asio::io_context io;
  hkpgw::gateway::HttpServer server{
      io,
      hkpgw::gateway::ServerLimits{4096, 1024, std::chrono::milliseconds(300), 64, 0},
      [](const hkpgw::gateway::HttpRequest& req) -> boost::asio::awaitable<hkpgw::gateway::HttpResponse> {
        co_return hkpgw::gateway::text_response(200, req.method + " " + req.target);
      }};
  int port = 0;
  std::thread thread;
  Server() {
    const std::string bound = server.listen(hkpgw::config::ListenAddress{"127.0.0.1", 0});
    port = std::stoi(bound.substr(bound.rfind(':') + 1));
    thread = std::thread([this] {
      auto guard = boost::asio::make_work_guard(io);
      io.run();
    });
  }
};

Server& server() {
  static Server* s = new Server();  // lives for the whole run
  return *s;
}

// A connection to the server; thousands a second leave the kernel short of free port pairs
// now and then (EADDRNOTAVAIL), so a few tries are allowed before it counts as a finding.
int connect_to(int port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<std::uint16_t>(port));
  inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
  for (int attempt = 0; attempt < 50; ++attempt) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    timeval tv{2, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) return fd;
    ::close(fd);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return -1;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  Server& s = server();
  const int fd = connect_to(s.port);
  if (fd < 0) __builtin_trap();  // the server stopped accepting: a finding
  for (std::size_t sent = 0; sent < size;) {
    const ssize_t n = ::send(fd, data + sent, size - sent, MSG_NOSIGNAL);
    if (n <= 0) break;
    sent += static_cast<std::size_t>(n);
  }
  ::shutdown(fd, SHUT_WR);
  std::string answer;
  char buf[8192];
  for (ssize_t n; (n = ::recv(fd, buf, sizeof buf, 0)) > 0 && answer.size() < (1 << 20);) {
    answer.append(buf, static_cast<std::size_t>(n));
  }
  // Reset rather than close: no TIME_WAIT pile-up on the server's side of loopback.
  const linger reset{1, 0};
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &reset, sizeof reset);
  ::close(fd);
  if (!answer.empty() && answer.rfind("HTTP/1.", 0) != 0) __builtin_trap();
  return 0;
}
