#include "gateway/net/filters.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <atomic>

#include "gateway/net/http_wire.hpp"
#include "gateway/net/proxy_protocol.hpp"
#include "gateway/observe/log.hpp"

namespace hkpgw::gateway {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

namespace {

constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);

class ProxyProtocolFilter final : public ConnectionFilter {
 public:
  explicit ProxyProtocolFilter(std::vector<config::Network> trusted)
      : trusted_(std::move(trusted)) {}

  // The header is peeked and consumed to the byte, so the client's own bytes stay in the
  // socket for TLS or HTTP.
  asio::awaitable<std::optional<Peer>> on_connect(tcp::socket& socket, Peer sender,
                                                  std::chrono::milliseconds timeout) override {
    if (!config::any_contains(trusted_, sender.family, sender.ip)) {
      refused(sender, "not in server.proxy_trusted");
      co_return std::nullopt;
    }
    // The deadline cancels the socket's waits. Its handler may run after this function is done
    // (it fired just as the header arrived): then `waiting` is false and it touches nothing.
    auto waiting = std::make_shared<bool>(true);
    struct Done {
      std::shared_ptr<bool>& waiting;
      ~Done() { *waiting = false; }
    } done{waiting};
    asio::steady_timer deadline(socket.get_executor());
    deadline.expires_after(timeout);
    deadline.async_wait([&socket, waiting](const boost::system::error_code& ec) {
      if (!ec && *waiting) {
        boost::system::error_code ignored;
        socket.cancel(ignored);
      }
    });
    // Peek what has arrived; keep only bytes that are surely the header's (all of an
    // incomplete one).
    std::string got;
    char buf[16 + kMaxProxyV2Length];
    while (true) {
      auto [ec, n] = co_await socket.async_receive(asio::buffer(buf, sizeof buf - got.size()),
                                                   tcp::socket::message_peek, kTuple);
      if (ec || n == 0) {
        refused(sender, ec ? "no PROXY header within client_timeout or connection lost"
                           : "closed before its PROXY header");
        co_return std::nullopt;
      }
      std::string seen = got;
      seen.append(buf, n);
      const ProxyHeader h = parse_proxy_header(seen);
      if (h.status == ProxyHeader::Status::invalid) {
        refused(sender, h.error);
        co_return std::nullopt;
      }
      const std::size_t take = h.status == ProxyHeader::Status::ok ? h.length - got.size() : n;
      boost::system::error_code rec;
      asio::read(socket, asio::buffer(buf, take), rec);  // already arrived: does not block
      if (rec) co_return std::nullopt;
      got.append(buf, take);
      if (h.status != ProxyHeader::Status::ok) continue;
      deadline.cancel();
      if (h.family == 0) co_return sender;  // LOCAL / UNKNOWN: the balancer's own check
      tcp::endpoint ep;
      if (h.family == 4) {
        asio::ip::address_v4::bytes_type b;
        std::copy(h.ip, h.ip + 4, b.begin());
        ep = tcp::endpoint(asio::ip::address_v4(b), h.port);
      } else {
        asio::ip::address_v6::bytes_type b;
        std::copy(h.ip, h.ip + 16, b.begin());
        ep = tcp::endpoint(asio::ip::address_v6(b), h.port);
      }
      co_return wire::peer_of(ep);
    }
  }

 private:
  void refused(const Peer& sender, const std::string& why) {
    const std::int64_t now = std::chrono::duration_cast<std::chrono::seconds>(
                                 std::chrono::steady_clock::now().time_since_epoch())
                                 .count();
    std::int64_t last = logged_.load();
    if (now - last < 10 || !logged_.compare_exchange_strong(last, now)) return;
    log::warn("proxy_header_refused",
              {{"peer", sender.text()}, {"reason", why},
               {"effect", "connection closed (this line at most every 10 s)"}});
  }

  const std::vector<config::Network> trusted_;
  std::atomic<std::int64_t> logged_{0};  // seconds (steady clock) of the last refusal line
};

class FunctionFilter final : public RequestFilter {
 public:
  explicit FunctionFilter(std::function<std::optional<HttpResponse>(const HttpRequest&)> admit)
      : admit_(std::move(admit)) {}
  FilterVerdict on_request(const HttpRequest& request) override {
    return {admit_(request), nullptr};
  }

 private:
  std::function<std::optional<HttpResponse>(const HttpRequest&)> admit_;
};

class ReuseFilter final : public RequestFilter {
 public:
  explicit ReuseFilter(AnswerReuse& reuse) : reuse_(reuse) {}
  FilterVerdict on_request(const HttpRequest& request) override {
    if (!reusable(request)) return {};
    return {std::nullopt, reuse_.find(request)};
  }
  void on_answer(const HttpRequest& request, const HttpResponse& response) override {
    if (response.reuse && reusable(request)) reuse_.keep(request, response);
  }

 private:
  // Every GET and HEAD: HTTP/1.1 keep-alive, and the HTTP/1.0 request on a new connection that
  // dirmngr sends for every gpg lookup (the server writes the connection's fate per request).
  static bool reusable(const HttpRequest& r) { return r.method == "GET" || r.method == "HEAD"; }
  AnswerReuse& reuse_;
};

}  // namespace

std::unique_ptr<ConnectionFilter> proxy_protocol_filter(std::vector<config::Network> trusted) {
  return std::make_unique<ProxyProtocolFilter>(std::move(trusted));
}

std::unique_ptr<RequestFilter> request_filter(
    std::function<std::optional<HttpResponse>(const HttpRequest&)> admit) {
  return std::make_unique<FunctionFilter>(std::move(admit));
}

std::unique_ptr<RequestFilter> answer_reuse_filter(AnswerReuse& reuse) {
  return std::make_unique<ReuseFilter>(reuse);
}

}  // namespace hkpgw::gateway
