#include "gateway/net/http_server.hpp"

#include <unistd.h>

#include <algorithm>
#include <array>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ip/v6_only.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <cctype>
#include <charconv>
#include <map>
#include <optional>

#include "gateway/net/http_wire.hpp"
#include "gateway/observe/log.hpp"

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

// The limits a reload may change (HttpServer::update_limits), each an atomic read relaxed where
// it is used: a new value applies from the next request on, and reading one costs what reading
// a plain field does.
class LiveLimits {
 public:
  explicit LiveLimits(const ServerLimits& l) { set(l); }
  void set(const ServerLimits& l) {
    max_header_bytes_.store(l.max_header_bytes, kRelaxed);
    max_body_bytes_.store(l.max_body_bytes, kRelaxed);
    client_timeout_ms_.store(l.client_timeout.count(), kRelaxed);
    max_connections_.store(l.max_connections, kRelaxed);
    max_per_client_.store(l.max_per_client, kRelaxed);
    max_body_memory_.store(l.max_body_memory, kRelaxed);
    min_body_rate_.store(l.min_body_rate, kRelaxed);
  }
  std::size_t max_header_bytes() const { return max_header_bytes_.load(kRelaxed); }
  std::size_t max_body_bytes() const { return max_body_bytes_.load(kRelaxed); }
  std::chrono::milliseconds client_timeout() const {
    return std::chrono::milliseconds(client_timeout_ms_.load(kRelaxed));
  }
  std::size_t max_connections() const { return max_connections_.load(kRelaxed); }
  std::size_t max_per_client() const { return max_per_client_.load(kRelaxed); }
  std::uint64_t max_body_memory() const { return max_body_memory_.load(kRelaxed); }
  std::uint64_t min_body_rate() const { return min_body_rate_.load(kRelaxed); }

 private:
  static constexpr auto kRelaxed = std::memory_order_relaxed;
  std::atomic<std::size_t> max_header_bytes_, max_body_bytes_, max_connections_, max_per_client_;
  std::atomic<std::int64_t> client_timeout_ms_;
  std::atomic<std::uint64_t> max_body_memory_, min_body_rate_;
};

struct HttpServer::Impl {
  Impl(std::vector<asio::io_context*> c, bool single, ServerLimits l, RequestHandler h,
       AccessHook a)
      : contexts(std::move(c)),
        serving(std::make_unique<std::atomic<std::size_t>[]>(contexts.size())),
        single_threaded(single),
        live(l),
        handler(std::move(h)),
        on_response(std::move(a)) {}

  // Where connections live: every context accepts (each on its own descriptor of the one
  // listening socket, so the kernel's single queue feeds whichever thread is free) and keeps
  // what it accepts, unless it serves clearly more connections than another context: then the
  // new one goes to the least busy (keep-alive clients that all connect at once would otherwise
  // pile onto whichever thread woke first).
  std::vector<asio::io_context*> contexts;
  std::unique_ptr<std::atomic<std::size_t>[]> serving;  // connections per context
  std::size_t home_for(std::size_t accepted_on) const;
  // Each context is run by one thread: a connection needs no strand, and its request never
  // changes threads.
  bool single_threaded;
  LiveLimits live;  // as the last reload left them
  RequestHandler handler;
  AccessHook on_response;
  // Registered filters (net/filters.hpp), in order; the server's own per-client share is
  // counted after the connection filters, on the client they named.
  std::vector<std::unique_ptr<ConnectionFilter>> connection_filters;
  std::vector<std::unique_ptr<RequestFilter>> request_filters;
  std::atomic<bool> share_logged{false};  // client_connection_limit is logged once
  std::shared_ptr<std::atomic<std::size_t>> active;

  std::mutex mutex;
  std::atomic<bool> stopping{false};  // written under `mutex`; read without it per request
  std::vector<std::shared_ptr<tcp::acceptor>> acceptors;
  std::uint64_t next_idle = 0;
  // Idle connections (waiting for a request), by the order they became idle -> how to close
  // them from any thread. The first one is the one idle longest; those whose request bytes were
  // already waiting come after every silent one (kHasBytes), so a flood of silent sockets being
  // accepted cannot evict a real client between its accept and the read of its request.
  // Connections inside a body come between the two: evictable, after every silent one.
  // New connections whose first request has not arrived yet (kFresh) come between the silent
  // ones and those inside a body, but only for kFirstBytesGrace: accepted while a flood's
  // connections were still being accepted, a real client was the silent one the next accept
  // evicted, in the moment between its connect and its first bytes.
  static constexpr std::uint64_t kFresh = std::uint64_t{1} << 60;
  static constexpr std::uint64_t kInBody = std::uint64_t{1} << 61;
  static constexpr std::uint64_t kHasBytes = std::uint64_t{1} << 62;
  // Body bytes reserved by requests being received (max_body_memory).
  std::atomic<std::uint64_t> body_bytes{0};
  Admission body_gate;
  std::map<std::uint64_t, std::function<void()>> idle;
  static constexpr std::chrono::milliseconds kFirstBytesGrace{200};
  std::map<std::uint64_t, std::chrono::steady_clock::time_point> fresh;  // kFresh ticket -> until
  // Connections per client (address, IPv6 by /64); entries go when their count reaches 0, so
  // there are never more than max_connections of them.
  std::unordered_map<std::string, std::size_t> per_client;

  // One per listener and context (`on`: the index of the acceptor's context).
  asio::awaitable<void> accept_loop(std::shared_ptr<tcp::acceptor> acceptor,
                                    std::shared_ptr<asio::ssl::context> tls, std::size_t on);
  struct Incoming;
  template <class Stream>
  asio::awaitable<void> session(Stream stream, Peer peer, std::size_t home);
  template <class Stream>
  asio::awaitable<Incoming> read_request(Stream& stream, beast::flat_buffer& buffer,
                                         const Peer& peer, const std::function<void()>& closer,
                                         bool first);
  struct BodyRead {
    std::optional<HttpResponse> refusal;  // 400, 408, 413
    bool gone = false;                    // the client went away (or was evicted): close
  };
  template <class Stream>
  asio::awaitable<BodyRead> read_body(Stream& stream, beast::flat_buffer& buffer,
                                      http::request_parser<http::string_body>& parser,
                                      std::size_t max_body, const std::function<void()>& closer);
  asio::awaitable<HttpResponse> answer(HttpRequest& req);
  // The request filters' verdict: the first that answers ends it.
  FilterVerdict filter(const HttpRequest& req);
  template <class Stream>
  asio::awaitable<beast::error_code> write_response(Stream& stream, const HttpResponse& res,
                                                    std::string& head_buf, unsigned version,
                                                    bool keep_alive, bool head);
  template <class Stream>
  asio::awaitable<beast::error_code> write_prepared(Stream& stream, const PreparedAnswer& a,
                                                    unsigned version, bool keep_alive,
                                                    std::string& tail_buf, bool head);
  template <class Stream, std::size_t N>
  asio::awaitable<beast::error_code> send(Stream& stream, std::array<asio::const_buffer, N> parts);
  asio::awaitable<void> drain(beast::tcp_stream& tcp_layer);
  // Returns the ticket to clear it with.
  std::uint64_t set_idle(std::function<void()> closer, std::uint64_t rank);
  void clear_idle(std::uint64_t ticket);
  // At max_connections: closes the connection idle longest; false when none is idle.
  bool evict_idle();
  bool admit_client(const std::string& client);
  void release_client(const std::string& client);
};

using namespace wire;

namespace {

auto& lowest(beast::tcp_stream& s) { return s; }
auto& lowest(beast::ssl_stream<beast::tcp_stream>& s) { return beast::get_lowest_layer(s); }

}  // namespace

std::uint64_t HttpServer::Impl::set_idle(std::function<void()> closer, std::uint64_t rank) {
  std::lock_guard lock(mutex);
  if (stopping) {
    closer();
    return 0;
  }
  const std::uint64_t ticket = ++next_idle | rank;
  idle.emplace(ticket, std::move(closer));
  if (rank == kFresh) fresh.emplace(ticket, std::chrono::steady_clock::now() + kFirstBytesGrace);
  return ticket;
}

void HttpServer::Impl::clear_idle(std::uint64_t ticket) {
  std::lock_guard lock(mutex);
  idle.erase(ticket);
  fresh.erase(ticket);
}

bool HttpServer::Impl::evict_idle() {
  std::function<void()> close;
  {
    std::lock_guard lock(mutex);
    if (idle.empty()) return false;
    // In rank order; new connections are passed over for one inside a body while the oldest
    // of them is within its grace (then so are the younger ones). One whose request bytes wait
    // (kHasBytes) still goes last.
    auto victim = idle.begin();
    if (victim->first >= kFresh && victim->first < kInBody) {
      const auto f = fresh.find(victim->first);
      const auto in_body = idle.lower_bound(kInBody);
      if (f != fresh.end() && f->second > std::chrono::steady_clock::now() &&
          in_body != idle.end() && in_body->first < kHasBytes) {
        victim = in_body;
      }
    }
    close = std::move(victim->second);
    fresh.erase(victim->first);
    idle.erase(victim);
  }
  close();
  return true;
}

bool HttpServer::Impl::admit_client(const std::string& client) {
  std::lock_guard lock(mutex);
  std::size_t& n = per_client[client];
  const std::size_t max = live.max_per_client();
  if (max > 0 && n >= max) {
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



// Body bytes a request holds against max_body_memory, given back when it goes.
struct BodyCharge {
  std::atomic<std::uint64_t>* pool = nullptr;
  std::uint64_t bytes = 0;
  BodyCharge() = default;
  BodyCharge(BodyCharge&& o) noexcept : pool(std::exchange(o.pool, nullptr)), bytes(o.bytes) {}
  BodyCharge& operator=(BodyCharge&& o) noexcept {
    std::swap(pool, o.pool);
    std::swap(bytes, o.bytes);
    return *this;
  }
  ~BodyCharge() {
    if (pool) pool->fetch_sub(bytes);
  }
};

namespace {

// A header line continued on the next (obsolete line folding: CRLF then a space or tab) in the
// raw bytes of a request's header. Beast unfolds such a field into one value, which a balancer
// in front that does not unfold reads otherwise (RFC 9112 section 5.2 allows refusing it).
bool has_obs_fold(std::string_view raw) {
  for (std::size_t at = raw.find('\n'); at != std::string_view::npos && at + 1 < raw.size();
       at = raw.find('\n', at + 1)) {
    if (raw[at + 1] == ' ' || raw[at + 1] == '\t') return true;
  }
  return false;
}

// Reads a request's header as http::async_read_header does, and says whether it folds a line:
// the parser takes a header only once all of it is in the buffer, so at that moment the raw
// bytes it used are there to look at (and only then; Beast keeps no copy).
template <class Stream>
asio::awaitable<std::pair<beast::error_code, bool>> read_header_checked(
    Stream& stream, beast::flat_buffer& buffer, http::request_parser<http::string_body>& parser) {
  parser.eager(false);
  beast::error_code ec;
  while (!parser.is_header_done()) {
    if (buffer.size() > 0) {
      const std::size_t used = parser.put(buffer.data(), ec);
      const bool folded =
          parser.is_header_done() &&
          has_obs_fold({static_cast<const char*>(buffer.data().data()), used});
      buffer.consume(used);
      if (parser.is_header_done() || ec != http::error::need_more) co_return std::pair{ec, folded};
      ec = {};
    }
    const std::size_t size = beast::read_size(buffer, 65536);
    if (size == 0) co_return std::pair{beast::error_code(http::error::buffer_overflow), false};
    auto [rec, n] = co_await stream.async_read_some(buffer.prepare(size), kTuple);
    buffer.commit(n);
    if (rec == asio::error::eof) {
      if (!parser.got_some()) {
        co_return std::pair{beast::error_code(http::error::end_of_stream), false};
      }
      parser.put_eof(ec);  // a header cut short: partial_message
      co_return std::pair{ec ? ec : beast::error_code(http::error::partial_message), false};
    }
    if (rec) co_return std::pair{rec, false};
  }
  co_return std::pair{ec, false};
}

}  // namespace

// One request read from the connection: complete, refused early, or none (the client left).
struct HttpServer::Impl::Incoming {
  std::optional<HttpRequest> request;
  std::optional<HttpResponse> early;  // with `request` describing what was read of it
  bool keep_alive = false;
  BodyCharge charge;
};

template <class Stream>
asio::awaitable<HttpServer::Impl::Incoming> HttpServer::Impl::read_request(
    Stream& stream, beast::flat_buffer& buffer, const Peer& peer,
    const std::function<void()>& closer, bool first) {
  auto& tcp_layer = lowest(stream);
  http::request_parser<http::string_body> parser;
  const std::size_t max_header = live.max_header_bytes();
  const std::size_t max_body = live.max_body_bytes();
  parser.header_limit(static_cast<std::uint32_t>(max_header));
  parser.body_limit(max_body);
  tcp_layer.expires_after(live.client_timeout());
  // Whether request bytes are here already. On plain TCP the socket (non-blocking) is read at
  // once: a client that sends its request with its connect (dirmngr, curl) costs one recv(2),
  // where asking first (FIONREAD) and then reading cost two.
  bool has_bytes = buffer.size() > 0;
  if (!has_bytes) {
    beast::error_code rec;
    if constexpr (std::is_same_v<Stream, beast::tcp_stream>) {
      const std::size_t n =
          tcp_layer.socket().read_some(buffer.prepare(beast::read_size(buffer, 65536)), rec);
      buffer.commit(rec ? 0 : n);  // would_block: nothing yet; eof and errors: the read below
    } else {
      has_bytes = tcp_layer.socket().available(rec) > 0;
    }
    has_bytes = has_bytes || buffer.size() > 0;
  }
  // Waiting makes the connection evictable (max_connections); a whole header already here
  // needs no wait, and no entry in the idle list.
  static constexpr std::string_view kHeaderEnd = "\r\n\r\n";
  const bool whole_header =
      has_bytes && std::string_view(static_cast<const char*>(buffer.data().data()), buffer.size())
                           .find(kHeaderEnd) != std::string_view::npos;
  const std::uint64_t idle_ticket = whole_header ? 0
                                                 : set_idle(closer, has_bytes ? kHasBytes
                                                                    : first   ? kFresh
                                                                              : 0);
  auto [ec, folded] = co_await read_header_checked(stream, buffer, parser);
  if (idle_ticket) clear_idle(idle_ticket);

  Incoming in;
  if (ec == http::error::header_limit) {
    in.early = text_response(431, "Request header fields too large: the header exceeds " +
                                      std::to_string(max_header) + " bytes");
  } else if (ec == http::error::body_limit) {  // Content-Length over the limit, seen early
    in.early = too_large(max_body);
  } else if (client_gone(ec)) {
    co_return in;
  } else if (ec) {
    in.early = text_response(400, "Bad request: malformed HTTP (" + ec.message() + ")");
  } else if (folded) {
    in.early = text_response(400, "Bad request: obsolete line folding (a header line continued "
                                  "on the next) is not accepted; send each field on one line");
  } else {
    in.early = check_header(parser, max_body);
  }
  // Before any body byte: whether this request may send one at all (the admin listener's trust
  // and token), then room for it in max_body_memory.
  if (!in.early && !parser.is_done() && body_gate) {
    in.early = body_gate(partial_request(parser, peer));
  }
  if (!in.early && !parser.is_done()) {
    const std::uint64_t want = parser.content_length().value_or(max_body);
    if (body_bytes.fetch_add(want) + want > live.max_body_memory()) {
      body_bytes.fetch_sub(want);
      in.early = text_response(503, "Service unavailable: the gateway is receiving too many "
                                    "uploads at once (server.max_body_memory); try again in a few "
                                    "seconds");
      in.early->set("Retry-After", "5");
    } else {
      in.charge.pool = &body_bytes;
      in.charge.bytes = want;
    }
  }
  if (!in.early && !parser.is_done()) {
    auto body = co_await read_body(stream, buffer, parser, max_body, closer);
    if (body.gone) co_return in;  // the client went away, or was evicted, mid-body
    in.early = std::move(body.refusal);
  }
  if (in.early) {
    in.request = partial_request(parser, peer);
    co_return in;
  }
  auto msg = parser.release();
  in.keep_alive = msg.keep_alive();
  in.request = to_request(std::move(msg), peer);
  co_return in;
}

// The body, read as it arrives: evictable (after every silent connection) while it waits, and
// cut off with 408 when it arrives slower than min_body_rate on average after a grace: a
// connection trickling a byte a second held its place for client_timeout and was never idle.
template <class Stream>
asio::awaitable<HttpServer::Impl::BodyRead> HttpServer::Impl::read_body(
    Stream& stream, beast::flat_buffer& buffer, http::request_parser<http::string_body>& parser,
    std::size_t max_body, const std::function<void()>& closer) {
  using Clock = std::chrono::steady_clock;
  constexpr auto kGrace = std::chrono::seconds(5);
  auto& tcp_layer = lowest(stream);
  const auto started = Clock::now();
  const auto give_up = started + live.client_timeout();
  const std::uint64_t min_rate = live.min_body_rate();
  std::uint64_t received = 0;
  BodyRead out;
  // The moment `received` bytes fall under the minimum rate.
  auto too_slow_at = [&] {
    if (min_rate == 0) return Clock::time_point::max();
    return started + kGrace +
           std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(
               static_cast<double>(received) / static_cast<double>(min_rate)));
  };
  // The rate's deadline cancels the read (the stream's own timeout would close the socket, and
  // the client could not be told why); it runs on this session's strand, as the read does.
  asio::steady_timer rate_timer(tcp_layer.get_executor());
  auto armed = std::make_shared<bool>(false);
  auto cut_off = std::make_shared<bool>(false);
  while (!parser.is_done()) {
    const auto slow = too_slow_at();
    tcp_layer.expires_at(give_up);
    *armed = true;
    if (slow < give_up) {
      rate_timer.expires_at(slow);
      rate_timer.async_wait([&tcp_layer, armed, cut_off](const beast::error_code& tec) {
        if (tec || !*armed) return;
        *cut_off = true;
        beast::error_code ignored;
        tcp_layer.socket().cancel(ignored);
      });
    }
    const std::uint64_t ticket = set_idle(closer, kInBody);
    auto [ec, n] = co_await http::async_read_some(stream, buffer, parser, kTuple);
    clear_idle(ticket);
    *armed = false;
    rate_timer.cancel();
    received += n;
    if (*cut_off) {
      const double seconds = std::chrono::duration<double>(Clock::now() - started).count();
      out.refusal = text_response(
          408, "Request timeout: the body arrived at " +
                   std::to_string(static_cast<std::uint64_t>(static_cast<double>(received) /
                                                             std::max(seconds, 1.0))) +
                   " bytes/s, under server.min_body_rate (" +
                   std::to_string(min_rate) + " bytes/s after 5 s)");
      co_return out;
    }
    if (ec == http::error::body_limit) {
      out.refusal = too_large(max_body);
      co_return out;
    }
    if (client_gone(ec)) {
      out.gone = true;
      co_return out;
    }
    if (ec) {
      out.refusal = text_response(400, "Bad request: malformed body (" + ec.message() + ")");
      co_return out;
    }
  }
  co_return out;
}

// One gather write of the head and the body. On plain TCP the socket is tried first without
// waiting: an answer that fits the socket buffer (every cached key) leaves in one sendmsg(2)
// with no reactor round trip and no timer; only what does not fit waits, with the timeout.
template <class Stream, std::size_t N>
asio::awaitable<beast::error_code> HttpServer::Impl::send(Stream& stream,
                                                         std::array<asio::const_buffer, N> parts) {
  std::size_t sent = 0;
  if constexpr (std::is_same_v<Stream, beast::tcp_stream>) {
    beast::error_code ec;
    sent = stream.socket().write_some(parts, ec);  // non-blocking (session start)
    if (ec && ec != asio::error::would_block && ec != asio::error::try_again) co_return ec;
    if (sent == asio::buffer_size(parts)) co_return beast::error_code{};
  }
  beast::buffers_suffix<std::array<asio::const_buffer, N>> rest(parts);
  rest.consume(sent);
  lowest(stream).expires_after(live.client_timeout());
  auto [ec, n] = co_await asio::async_write(stream, rest, kTuple);
  co_return ec;
}

template <class Stream>
asio::awaitable<beast::error_code> HttpServer::Impl::write_response(Stream& stream,
                                                                   const HttpResponse& res,
                                                                   std::string& head_buf,
                                                                   unsigned version,
                                                                   bool keep_alive, bool head) {
  write_head(res, version, keep_alive, head_buf);
  const std::string_view body = res.payload();
  // HEAD: the same status and headers, no body (RFC 9110 section 9.3.2)
  std::array<asio::const_buffer, 2> parts{asio::buffer(head_buf),
                                          asio::buffer(body.data(), head ? 0 : body.size())};
  beast::error_code ec = co_await send(stream, parts);
  co_return ec;
}

// A prepared answer: its head (its status line's version as the request's: "HTTP/1.0" and
// "HTTP/1.1" are the same length), the Connection field the request needs and the Age line
// made now, its shared body. The same bytes write_head gives the handler's answer, but for the
// order of two fields.
template <class Stream>
asio::awaitable<beast::error_code> HttpServer::Impl::write_prepared(
    Stream& stream, const PreparedAnswer& a, unsigned version, bool keep_alive,
    std::string& tail_buf, bool head) {
  static constexpr std::string_view kHttp10 = "HTTP/1.0";
  const auto now = std::chrono::duration_cast<std::chrono::seconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count();
  char digits[24];
  const auto end = std::to_chars(digits, digits + sizeof digits,
                                 std::max<std::int64_t>(0, now - a.fetched_at)).ptr;
  tail_buf.clear();
  if (version == 10 && keep_alive) tail_buf += "Connection: keep-alive\r\n";
  if (version != 10 && !keep_alive) tail_buf += "Connection: close\r\n";
  tail_buf += "Age: ";
  tail_buf.append(digits, end);
  tail_buf += "\r\n\r\n";
  const std::string_view body = a.response.payload();
  const std::string_view status_version =
      version == 10 ? kHttp10 : std::string_view(a.head).substr(0, kHttp10.size());
  std::array<asio::const_buffer, 4> parts{
      asio::buffer(status_version.data(), status_version.size()),
      asio::buffer(a.head.data() + kHttp10.size(), a.head.size() - kHttp10.size()),
      asio::buffer(tail_buf), asio::buffer(body.data(), head ? 0 : body.size())};
  beast::error_code ec = co_await send(stream, parts);
  co_return ec;
}

FilterVerdict HttpServer::Impl::filter(const HttpRequest& req) {
  for (const auto& f : request_filters) {
    FilterVerdict v = f->on_request(req);
    if (v.answer || v.prepared) return v;
  }
  return {};
}

asio::awaitable<HttpResponse> HttpServer::Impl::answer(HttpRequest& req) {
  const bool head = req.method == "HEAD";
  if (head) req.method = "GET";  // HEAD is GET without the body
  HttpResponse res;
  try {
    res = co_await handler(req);
  } catch (const std::exception& e) {
    log::error("handler_exception", {{"what", e.what()}, {"target", req.target}});
    res = text_response(500, "Internal error");
  }
  if (head) req.method = "HEAD";
  co_return res;
}

// The request was refused before its body was read. Closing now, with the client still
// sending, would make the kernel answer its next bytes with a reset, and the client would see a
// broken pipe instead of our answer (gpg then marks the host dead). So: FIN, then read and
// discard what it still sends, bounded in bytes and time, until it closes.
asio::awaitable<void> HttpServer::Impl::drain(beast::tcp_stream& tcp_layer) {
  beast::error_code ignored;
  tcp_layer.socket().shutdown(tcp::socket::shutdown_send, ignored);
  std::array<char, 16 << 10> sink;
  std::size_t discarded = 0;
  tcp_layer.expires_after(std::min<std::chrono::milliseconds>(live.client_timeout(), kMaxDrainTime));
  while (discarded < kMaxDrainBytes) {
    auto [ec, n] = co_await tcp_layer.async_read_some(asio::buffer(sink), kTuple);
    if (ec) break;
    discarded += n;
  }
}

template <class Stream>
asio::awaitable<void> HttpServer::Impl::session(Stream stream, Peer peer, std::size_t home) {
  // The connection's counts, its client's share, and each connection filter that let it in
  // told when it ends.
  struct Admitted {
    Impl& impl;
    std::size_t home;
    std::vector<std::pair<ConnectionFilter*, Peer>> by;  // empty without registered filters
    std::optional<std::string> client;                  // counted in per_client
    ~Admitted() {
      for (auto it = by.rbegin(); it != by.rend(); ++it) it->first->on_close(it->second);
      if (client) impl.release_client(*client);
      --impl.serving[home];
      --*impl.active;
    }
  } admitted{*this, home, {}, {}};
  auto& tcp_layer = lowest(stream);
  auto executor = co_await asio::this_coro::executor;
  auto let_in = [&](ConnectionFilter& f) -> asio::awaitable<bool> {
    std::optional<Peer> next = co_await f.on_connect(tcp_layer.socket(), peer, live.client_timeout());
    if (!next) co_return false;
    peer = std::move(*next);
    admitted.by.emplace_back(&f, peer);
    co_return true;
  };
  for (const auto& f : connection_filters) {
    if (!co_await let_in(*f)) co_return;
  }
  if (!admit_client(peer.client)) {  // this client holds its share already
    if (!share_logged.exchange(true)) {
      log::warn("client_connection_limit",
                {{"client", peer.client},
                 {"limit", std::to_string(live.max_per_client())},
                 {"effect", "further connections from it are closed at once (logged once)"}});
    }
    co_return;
  }
  admitted.client = peer.client;
  // The closer may run after this session ended: it runs on the session's strand and checks
  // `alive`, which the session clears on that same strand before its frame goes away.
  auto alive = std::make_shared<bool>(true);
  struct Dead {
    std::shared_ptr<bool>& alive;
    ~Dead() { *alive = false; }
  } dead{alive};
  const std::function<void()> closer = [&tcp_layer, executor, alive] {
    asio::post(executor, [&tcp_layer, alive] {
      if (!*alive) return;
      beast::error_code ignored;
      tcp_layer.socket().shutdown(tcp::socket::shutdown_receive, ignored);
    });
  };

  if constexpr (!std::is_same_v<Stream, beast::tcp_stream>) {
    tcp_layer.expires_after(live.client_timeout());
    auto [ec] = co_await stream.async_handshake(asio::ssl::stream_base::server, kTuple);
    if (ec) co_return;  // failed handshakes are the client's business; nothing to answer
  }

  if constexpr (std::is_same_v<Stream, beast::tcp_stream>) {
    beast::error_code ignored;
    tcp_layer.socket().non_blocking(true, ignored);  // for write_response's first try
  }
  beast::flat_buffer buffer;
  std::string head_buf;  // the answers' status lines and headers, its memory reused
  bool first_request = true;
  auto elapsed = [](std::chrono::steady_clock::time_point since) {
    return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() -
                                                                 since);
  };
  while (true) {
    // Read.
    Incoming in = co_await read_request(stream, buffer, peer, closer, first_request);
    first_request = false;
    if (!in.request) break;  // the client went away or idled out: close quietly
    HttpRequest& req = *in.request;
    req.tls = !std::is_same_v<Stream, beast::tcp_stream>;
    const auto started = std::chrono::steady_clock::now();
    if (in.early) {  // refused before it was read whole: answer, drain, close
      in.early->close = true;
      co_await write_response(stream, *in.early, head_buf, req.version, false, req.method == "HEAD");
      if (on_response) on_response(req, *in.early, req.access, elapsed(started));
      co_await drain(tcp_layer);
      co_return;
    }
    // Filters: a rate limit's answer, or a prepared answer sent again without the handler.
    FilterVerdict v = filter(req);
    if (v.prepared && !stopping.load()) {
      const bool keep_alive = req.keep_alive;
      const beast::error_code pec = co_await write_prepared(
          stream, *v.prepared, req.version, keep_alive, head_buf, req.method == "HEAD");
      if (on_response) on_response(req, v.prepared->response, v.prepared->access, elapsed(started));
      if (pec || !keep_alive) break;
      continue;
    }
    // Handler.
    HttpResponse res;
    if (v.answer) {
      res = std::move(*v.answer);
    } else {
      res = co_await answer(req);
      for (const auto& f : request_filters) f->on_answer(req, res);
    }
    // Write.
    const bool keep_alive = req.keep_alive && !res.close && !stopping.load();
    const beast::error_code wec =
        co_await write_response(stream, res, head_buf, req.version, keep_alive,
                               req.method == "HEAD");
    if (on_response) on_response(req, res, req.access, elapsed(started));
    if (wec || !keep_alive) break;
  }

  // Orderly close: TLS close_notify (bounded), then FIN.
  if constexpr (!std::is_same_v<Stream, beast::tcp_stream>) {
    tcp_layer.expires_after(std::chrono::seconds(2));
    co_await stream.async_shutdown(kTuple);
  }
  beast::error_code ignored;
  tcp_layer.socket().shutdown(tcp::socket::shutdown_both, ignored);
}

std::size_t HttpServer::Impl::home_for(std::size_t accepted_on) const {
  std::size_t least = accepted_on;
  for (std::size_t i = 0; i < contexts.size(); ++i) {
    if (serving[i].load(std::memory_order_relaxed) <
        serving[least].load(std::memory_order_relaxed)) {
      least = i;
    }
  }
  const std::size_t mine = serving[accepted_on].load(std::memory_order_relaxed);
  const std::size_t fewest = serving[least].load(std::memory_order_relaxed);
  // Within an eighth (and never for a difference of 2 or less): stay, and cost nothing.
  return mine - fewest > std::max<std::size_t>(2, mine / 8) ? least : accepted_on;
}

asio::awaitable<void> HttpServer::Impl::accept_loop(std::shared_ptr<tcp::acceptor> acceptor,
                                                    std::shared_ptr<asio::ssl::context> tls,
                                                    std::size_t on) {
  std::chrono::steady_clock::time_point last_accept_failure_log{};
  asio::io_context& io = *contexts[on];
  while (true) {
    // Full: the connection idle longest makes room. With none idle (every one busy, or just
    // accepted and not yet reading), the next client waits in the kernel's backlog until one
    // ends or goes idle; accepting it only to close it refused clients that a moment later
    // would have had room.
    if (active->load() >= live.max_connections() && !evict_idle()) {
      asio::steady_timer t(io, std::chrono::milliseconds(5));
      co_await t.async_wait(kTuple);
      if (!acceptor->is_open()) co_return;
      continue;
    }
    // The client's address comes with the accept (no getpeername(2)). TCP_NODELAY is the
    // listening socket's, which Linux copies to every socket it accepts.
    tcp::socket socket(single_threaded ? asio::any_io_executor(io.get_executor())
                                       : asio::any_io_executor(asio::make_strand(io)));
    tcp::endpoint ep;
    auto [ec] = co_await acceptor->async_accept(socket, ep, kTuple);
    if (ec == asio::error::operation_aborted || !acceptor->is_open()) co_return;
    if (ec) {
      // Out of descriptors (EMFILE, ENFILE): the connection idle longest gives its own back, and
      // the accept is tried again at once; with none idle, shortly. Logged at most every 10 s.
      const bool out_of_fds = ec == asio::error::no_descriptors ||
                              ec.value() == ENFILE;
      const bool evicted = out_of_fds && evict_idle();
      const auto now = std::chrono::steady_clock::now();
      if (now - last_accept_failure_log >= std::chrono::seconds(10)) {
        last_accept_failure_log = now;
        log::warn("accept_failed",
                  {{"error", ec.message()},
                   {"effect", evicted ? "closed the connection idle longest, accepting again"
                                      : "accepting again in 50 ms (this line at most every 10 s)"}});
      }
      if (evicted) continue;
      asio::steady_timer t(io, std::chrono::milliseconds(50));
      co_await t.async_wait(kTuple);
      continue;
    }
    Peer peer = peer_of(ep);
    const std::size_t home = single_threaded ? home_for(on) : on;
    if (home != on) {  // moved to the other context's reactor
      beast::error_code rec;
      const auto fd = socket.release(rec);
      if (rec) continue;
      socket = tcp::socket(contexts[home]->get_executor());
      socket.assign(ep.protocol(), fd, rec);
      if (rec) {
        ::close(fd);
        continue;
      }
    }
    ++serving[home];
    ++*active;  // the connection filters and the client's share are the session's first step
    const auto executor = socket.get_executor();
    if (tls) {
      beast::ssl_stream<beast::tcp_stream> stream(beast::tcp_stream(std::move(socket)), *tls);
      asio::co_spawn(executor, session(std::move(stream), std::move(peer), home), asio::detached);
    } else {
      asio::co_spawn(executor, session(beast::tcp_stream(std::move(socket)), std::move(peer), home),
                     asio::detached);
    }
  }
}

HttpServer::HttpServer(asio::io_context& io, ServerLimits limits, RequestHandler handler,
                       AccessHook on_response)
    : impl_(std::make_unique<Impl>(std::vector<asio::io_context*>{&io}, false, limits,
                                   std::move(handler), std::move(on_response))),
      active_(std::make_shared<std::atomic<std::size_t>>(0)) {
  impl_->active = active_;
}

HttpServer::HttpServer(std::vector<asio::io_context*> per_thread, ServerLimits limits,
                       RequestHandler handler, AccessHook on_response)
    : impl_(std::make_unique<Impl>(std::move(per_thread), true, limits, std::move(handler),
                                   std::move(on_response))),
      active_(std::make_shared<std::atomic<std::size_t>>(0)) {
  impl_->active = active_;
}

HttpServer::~HttpServer() { stop(); }

void HttpServer::add_connection_filter(std::unique_ptr<ConnectionFilter> filter) {
  impl_->connection_filters.push_back(std::move(filter));
}

void HttpServer::add_request_filter(std::unique_ptr<RequestFilter> filter) {
  impl_->request_filters.push_back(std::move(filter));
}

void HttpServer::gate_bodies_with(Admission gate) { impl_->body_gate = std::move(gate); }

void HttpServer::update_limits(const ServerLimits& limits) { impl_->live.set(limits); }

std::string HttpServer::listen(const config::ListenAddress& address,
                               std::shared_ptr<asio::ssl::context> tls) {
  beast::error_code ec;
  const auto ip = asio::ip::make_address(address.host, ec);
  tcp::endpoint endpoint;
  if (ec) {
    tcp::resolver resolver(*impl_->contexts.front());
    auto results = resolver.resolve(address.host, std::to_string(address.port), ec);
    if (ec || results.empty()) {
      throw std::runtime_error("cannot resolve listen address " + address.text() + ": " +
                               ec.message());
    }
    endpoint = results.begin()->endpoint();
  } else {
    endpoint = tcp::endpoint(ip, address.port);
  }
  asio::io_context& first = *impl_->contexts.front();
  auto acceptor = std::make_shared<tcp::acceptor>(first);
  acceptor->open(endpoint.protocol(), ec);
  if (!ec) acceptor->set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec && endpoint.address().is_v6()) acceptor->set_option(asio::ip::v6_only(true), ec);
  // Every answer is written whole in one go: Nagle's algorithm could only hold its last segment
  // back, and after a TLS handshake it held the first answer until the client's delayed ACK
  // (~40 ms per HKPS request on a new connection, dirmngr's shape).
  if (!ec) acceptor->set_option(tcp::no_delay(true), ec);
  if (!ec) acceptor->bind(endpoint, ec);
  if (!ec) acceptor->listen(asio::socket_base::max_listen_connections, ec);
  // The other contexts accept from the same socket through descriptors of their own: one queue
  // in the kernel, and a connection stays on the thread that took it (no hand-over, no wake-up
  // of another thread).
  std::vector<std::shared_ptr<tcp::acceptor>> each{acceptor};
  for (std::size_t i = 1; !ec && impl_->single_threaded && i < impl_->contexts.size(); ++i) {
    const int fd = ::dup(acceptor->native_handle());
    if (fd < 0) {
      ec.assign(errno, beast::system_category());
      break;
    }
    auto other = std::make_shared<tcp::acceptor>(*impl_->contexts[i]);
    other->assign(endpoint.protocol(), fd, ec);
    if (ec) ::close(fd);
    each.push_back(std::move(other));
  }
  if (ec) {
    throw std::runtime_error("cannot listen on " + address.text() + ": " + ec.message());
  }
  const auto bound = acceptor->local_endpoint();
  {
    std::lock_guard lock(impl_->mutex);
    impl_->acceptors.insert(impl_->acceptors.end(), each.begin(), each.end());
  }
  for (std::size_t i = 0; i < each.size(); ++i) {
    asio::co_spawn(*impl_->contexts[i], impl_->accept_loop(each[i], tls, i), asio::detached);
  }
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
    asio::post(a->get_executor(), [a] {
      beast::error_code ignored;
      a->close(ignored);
    });
  }
  for (auto& [id, close] : idle) close();
}

}  // namespace hkpgw::gateway
