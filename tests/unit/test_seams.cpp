// The seams each next capability plugs into: the server's connection and request filters, the
// admin router, component-declared metrics, the peer as a structured value, and the HKP upstream
// kind's requests.
#include <unistd.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_future.hpp>
#include <catch2/catch.hpp>
#include <future>
#include <map>
#include <mutex>
#include <thread>

#include "gateway/http/admin.hpp"
#include "gateway/http/formats.hpp"
#include "gateway/net/http_server.hpp"
#include "gateway/observe/metrics.hpp"
#include "gateway/service/replicas.hpp"
#include "gateway/upstream/hkp_upstream.hpp"
#include "support/harness.hpp"

using namespace hkpgw;
using namespace hkpgw::gateway;
namespace asio = boost::asio;

namespace {

// A filter that records its name, and answers 429 for targets it is told to refuse.
class Recorder final : public RequestFilter {
 public:
  Recorder(std::string name, std::vector<std::string>& trace, std::string refuse = {})
      : name_(std::move(name)), trace_(trace), refuse_(std::move(refuse)) {}
  FilterVerdict on_request(const HttpRequest& r) override {
    trace_.push_back(name_ + " " + r.target + " from " + r.peer.client);
    if (!refuse_.empty() && r.target == refuse_) {
      r.access.op = "refused";
      return {text_response(429, "Too many requests"), nullptr};
    }
    return {};
  }
  void on_answer(const HttpRequest&, const HttpResponse& res) override {
    trace_.push_back(name_ + " saw " + std::to_string(res.status));
  }

 private:
  std::string name_;
  std::vector<std::string>& trace_;
  std::string refuse_;
};

// A connection filter that names every client 198.51.100.7 (as a PROXY header would).
class Renamer final : public ConnectionFilter {
 public:
  explicit Renamer(int& closed) : closed_(closed) {}
  asio::awaitable<std::optional<Peer>> on_connect(asio::ip::tcp::socket&, Peer peer,
                                                  std::chrono::milliseconds) override {
    peer.address = peer.client = "198.51.100.7";
    co_return peer;
  }
  void on_close(const Peer& p) override { closed_ += p.client == "198.51.100.7"; }

 private:
  int& closed_;
};

// Records whether Nagle's algorithm is off on each accepted socket, as the server hands it on.
class NoDelayProbe final : public ConnectionFilter {
 public:
  explicit NoDelayProbe(std::vector<bool>& seen) : seen_(seen) {}
  asio::awaitable<std::optional<Peer>> on_connect(asio::ip::tcp::socket& socket, Peer peer,
                                                  std::chrono::milliseconds) override {
    asio::ip::tcp::no_delay option;
    boost::system::error_code ec;
    socket.get_option(option, ec);
    seen_.push_back(!ec && option.value());
    co_return peer;
  }

 private:
  std::vector<bool>& seen_;
};

// Records the thread each connection is served on.
class ThreadProbe final : public ConnectionFilter {
 public:
  asio::awaitable<std::optional<Peer>> on_connect(asio::ip::tcp::socket&, Peer peer,
                                                  std::chrono::milliseconds) override {
    std::lock_guard lock(mutex_);
    ++served_[std::this_thread::get_id()];
    co_return peer;
  }
  std::vector<std::size_t> counts() {
    std::lock_guard lock(mutex_);
    std::vector<std::size_t> out;
    for (const auto& [thread, n] : served_) out.push_back(n);
    return out;
  }
  std::size_t total() {
    std::size_t t = 0;
    for (auto n : counts()) t += n;
    return t;
  }

 private:
  std::mutex mutex_;
  std::map<std::thread::id, std::size_t> served_;
};

// Hands the server a filter while the test keeps the probe.
class ProbeRef final : public ConnectionFilter {
 public:
  explicit ProbeRef(ThreadProbe& p) : p_(p) {}
  asio::awaitable<std::optional<Peer>> on_connect(asio::ip::tcp::socket& s, Peer peer,
                                                  std::chrono::milliseconds t) override {
    return p_.on_connect(s, std::move(peer), t);
  }

 private:
  ThreadProbe& p_;
};

// Two network threads, each running its own context, as the gateway runs them.
struct TwoThreads {
  asio::io_context a, b;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> wa, wb;
  std::thread ta, tb;
  TwoThreads() : wa(a.get_executor()), wb(b.get_executor()) {
    ta = std::thread([this] { a.run(); });
    tb = std::thread([this] { b.run(); });
  }
  std::vector<asio::io_context*> each() { return {&a, &b}; }
  void join(HttpServer& server) {
    asio::post(a, [&server] { server.stop(); });
    wa.reset();
    wb.reset();  // the threads end once every connection has
    ta.join();
    tb.join();
  }
};

RequestHandler ok_handler() {
  return [](const HttpRequest&) -> asio::awaitable<HttpResponse> {
    co_return text_response(200, "x");
  };
}

}  // namespace

TEST_CASE("accepted connections send at once: Nagle's algorithm is off (TCP_NODELAY)",
          "[seams][unit]") {
  // With Nagle on, the answer after a TLS handshake waited for the client's delayed ACK: about
  // 40 ms per HKPS request on a new connection, which is how dirmngr asks.
  std::vector<bool> seen;
  asio::io_context io;
  HttpServer server(io, ServerLimits{},
                    [](const HttpRequest&) -> asio::awaitable<HttpResponse> {
                      co_return text_response(200, "x");
                    },
                    {});
  server.add_connection_filter(std::make_unique<NoDelayProbe>(seen));
  const std::string address = server.listen(config::parse_listen("127.0.0.1:0").value());
  std::thread runner([&io] { io.run(); });
  const auto ok = test::http_request(address, "GET", "/");
  asio::post(io, [&server] { server.stop(); });
  runner.join();
  CHECK(ok.status == 200);
  CHECK(seen == std::vector<bool>{true});
}

TEST_CASE("every network thread accepts: one stuck thread does not stop new connections",
          "[seams][unit]") {
  // Accepting on one thread and handing each socket to the next cost a cross-thread wake-up per
  // connection (dirmngr opens one per request), and a thread held up held up every accept.
  TwoThreads threads;
  ThreadProbe probe;
  HttpServer server(threads.each(), ServerLimits{}, ok_handler(), {});
  server.add_connection_filter(std::make_unique<ProbeRef>(probe));
  const std::string address = server.listen(config::parse_listen("127.0.0.1:0").value());
  for (asio::io_context* stuck : threads.each()) {
    std::promise<void> release, stuck_now;
    std::promise<bool> held;
    asio::post(*stuck, [f = release.get_future(), &held, &stuck_now]() mutable {
      stuck_now.set_value();
      held.set_value(f.wait_for(std::chrono::seconds(10)) == std::future_status::ready);
    });
    stuck_now.get_future().wait();  // (a connection it had accepted just before would wait)
    const auto answer = test::http_request(address, "GET", "/");
    release.set_value();
    CHECK(answer.status == 200);
    CHECK(held.get_future().get());  // answered while the other thread was still stuck
  }
  threads.join(server);
}

TEST_CASE("connections held open are spread over the network threads", "[seams][unit]") {
  TwoThreads threads;
  ThreadProbe probe;
  HttpServer server(threads.each(), ServerLimits{}, ok_handler(), {});
  server.add_connection_filter(std::make_unique<ProbeRef>(probe));
  const std::string address = server.listen(config::parse_listen("127.0.0.1:0").value());
  std::vector<int> held;
  for (int i = 0; i < 40; ++i) held.push_back(test::connect_to(address));
  REQUIRE(test::eventually([&] { return probe.total() == 40; }));
  const auto counts = probe.counts();
  for (int fd : held) ::close(fd);
  threads.join(server);
  REQUIRE(counts.size() == 2);
  CHECK(counts[0] >= 16);
  CHECK(counts[1] >= 16);
}

TEST_CASE("the server runs its registered filters around the handler, in order",
          "[seams][unit]") {
  std::vector<std::string> trace;
  std::vector<std::string> logged;
  int closed = 0;
  asio::io_context io;
  HttpServer server(
      io, ServerLimits{},
      [&trace](const HttpRequest& r) -> asio::awaitable<HttpResponse> {
        trace.push_back("handler " + r.target);
        co_return text_response(200, "done");
      },
      [&logged](const HttpRequest& r, const HttpResponse& res, const AccessRecord& a,
                std::chrono::microseconds) {
        logged.push_back(r.target + " " + std::to_string(res.status) + " " + std::string(a.op));
      });
  server.add_connection_filter(std::make_unique<Renamer>(closed));
  server.add_request_filter(std::make_unique<Recorder>("a", trace, "/refused"));
  server.add_request_filter(std::make_unique<Recorder>("b", trace));
  const std::string address = server.listen(config::parse_listen("127.0.0.1:0").value());
  std::thread runner([&io] { io.run(); });
  const auto ok = test::http_request(address, "GET", "/ok");
  const auto refused = test::http_request(address, "GET", "/refused");
  asio::post(io, [&server] { server.stop(); });
  runner.join();

  CHECK(ok.status == 200);
  CHECK(refused.status == 429);
  CHECK(trace == std::vector<std::string>{"a /ok from 198.51.100.7", "b /ok from 198.51.100.7",
                                          "handler /ok", "a saw 200", "b saw 200",
                                          "a /refused from 198.51.100.7"});
  CHECK(logged == std::vector<std::string>{"/ok 200 -", "/refused 429 refused"});
  CHECK(closed == 2);  // each connection told its filter when it ended
}

TEST_CASE("allow_any_origin adds the CORS header unless the handler set one", "[seams][unit]") {
  auto origin = [](const HttpResponse& r) {
    std::vector<std::string> v;
    for (const auto& [k, val] : r.headers) {
      if (k == "Access-Control-Allow-Origin" || k == "access-control-allow-origin") v.push_back(val);
    }
    return v;
  };
  HttpResponse plain = text_response(404, "Not found");
  allow_any_origin(plain);
  CHECK(origin(plain) == std::vector<std::string>{"*"});
  HttpResponse own;
  own.set("access-control-allow-origin", "https://example.org");
  allow_any_origin(own);
  CHECK(origin(own) == std::vector<std::string>{"https://example.org"});
}

TEST_CASE("a peer prints unambiguously, IPv6 in brackets", "[seams][unit]") {
  CHECK(Peer{"192.0.2.1", 5, "192.0.2.1"}.text() == "192.0.2.1:5");
  CHECK(Peer{"2001:db8::1", 47154, "2001:db8::/64"}.text() == "[2001:db8::1]:47154");
  CHECK(Peer{}.text() == "?");
}

TEST_CASE("the HKP kind turns each question into the request keyservers answer best",
          "[seams][unit]") {
  using hkp::SearchKind;
  CHECK(HkpUpstream::keys_target({SearchKind::fingerprint, "0123456789ABCDEF0123456789ABCDEF01234567"}) ==
        "/pks/lookup?op=get&options=mr&search=0x0123456789ABCDEF0123456789ABCDEF01234567");
  CHECK(HkpUpstream::keys_target({SearchKind::long_keyid, "89ABCDEF01234567"}) ==
        "/pks/lookup?op=get&options=mr&search=0x89ABCDEF01234567");
  // Addresses: exact match, percent-encoded.
  CHECK(HkpUpstream::keys_target({SearchKind::email, "a+b@example.org"}) ==
        "/pks/lookup?op=get&options=mr&search=a%2Bb%40example.org&exact=on");
  CHECK(HkpUpstream::index_target({SearchKind::text, "Alice Example"}) ==
        "/pks/lookup?op=index&options=mr&fingerprint=on&search=Alice%20Example");
}

TEST_CASE("a component declares its own metrics through observe/", "[seams][unit]") {
  Metrics metrics("test");
  const CounterFamily outcomes = metrics.counter("toy_total", "What the toy component did, by outcome",
                                                 {"outcome"}, {{"done"}, {"failed"}});
  const GaugeFamily depth = metrics.gauge("toy_depth", "The toy's queue");
  std::string text = metrics.render({});
  CHECK_THAT(text, Catch::Contains("# HELP hkp_gateway_toy_total What the toy component did"));
  CHECK_THAT(text, Catch::Contains("hkp_gateway_toy_total{outcome=\"failed\"} 0"));  // at zero
  outcomes.add({"done"});
  outcomes.add({"done"}, 2);
  depth.set(7);
  text = metrics.render({});
  CHECK_THAT(text, Catch::Contains("hkp_gateway_toy_total{outcome=\"done\"} 3"));
  CHECK_THAT(text, Catch::Contains("hkp_gateway_toy_depth 7"));
  // The same name again is the same family (two components of one kind share it).
  metrics.counter("toy_total", "What the toy component did, by outcome", {"outcome"}).add({"done"});
  CHECK_THAT(metrics.render({}), Catch::Contains("hkp_gateway_toy_total{outcome=\"done\"} 4"));
  // Metrics::none() hands out families that count nothing, and a default one too.
  Metrics::none().counter("toy_total", "ignored", {"outcome"}).add({"done"});
  CounterFamily{}.add();
  CHECK(Metrics::none().render({}).empty());
}

TEST_CASE("the admin router gates by path before the method, then routes", "[seams][unit]") {
  auto cfg = std::make_shared<config::Config>(config::defaults());
  auto snap = std::make_shared<Snapshot>();
  snap->config = cfg;
  AdminRouter router([snap] { return std::shared_ptr<const Snapshot>(snap); });
  int handled = 0;
  const AdminRouter::Gate locked = [](const HttpRequest& r) -> std::optional<HttpResponse> {
    if (r.authorization == "ok") return std::nullopt;
    return text_response(401, "no");
  };
  auto handler = [&handled](const HttpRequest&) -> asio::awaitable<HttpResponse> {
    ++handled;
    co_return text_response(200, "done");
  };
  router.add("POST", "/admin/thing", locked, handler);
  router.add("*", "/admin/", locked, [](const HttpRequest&) -> asio::awaitable<HttpResponse> {
    co_return text_response(404, "no such admin endpoint");
  }, true);
  router.add("GET", "/open", {}, handler);
  auto ask = [&router](std::string method, std::string target, std::string auth = "") {
    HttpRequest r;
    r.method = std::move(method);
    r.target = std::move(target);
    r.authorization = std::move(auth);
    asio::io_context io;
    auto f = asio::co_spawn(io, router.handle(r), asio::use_future);
    io.run();
    return f.get();
  };
  HttpRequest head;
  head.method = "POST";
  head.target = "/admin/thing";
  CHECK(router.gate(head)->status == 401);  // before any body is read
  head.target = "/elsewhere";
  CHECK(router.gate(head)->status == 404);  // a POST to no route: refused before its body
  CHECK(ask("POST", "/admin/thing").status == 401);
  CHECK(ask("GET", "/admin/thing").status == 401);  // the gate first, whatever the method
  CHECK(ask("POST", "/admin/thing", "ok").status == 200);
  const HttpResponse wrong = ask("GET", "/admin/thing", "ok");
  CHECK(wrong.status == 405);
  CHECK(wrong.headers.front().second == "POST");
  CHECK(ask("DELETE", "/admin/other", "ok").status == 404);  // the fallback
  CHECK(ask("GET", "/admin/other").status == 401);
  CHECK(ask("GET", "/open").status == 200);
  CHECK(ask("HEAD", "/open").status == 200);
  CHECK(ask("GET", "/nowhere").status == 404);
  CHECK(handled == 3);
  HttpRequest foreign;
  foreign.method = "GET";
  foreign.target = "/open";
  foreign.host = "evil.example";
  CHECK(router.gate(foreign)->status == 403);  // DNS rebinding
}

TEST_CASE("an outbox destination is typed, and stored as it always was", "[seams][unit]") {
  const Destination r = Destination::replica("10.0.0.12:11380");
  CHECK(r.outbox_key() == "peer:10.0.0.12:11380");
  const Destination back = Destination::from_outbox(r.outbox_key());
  CHECK(back.kind == Destination::Kind::replica);
  CHECK(back.name == "10.0.0.12:11380");
  const Destination u = Destination::from_outbox("ubuntu");
  CHECK(u.kind == Destination::Kind::upstream);
  CHECK(u.outbox_key() == "ubuntu");
}
