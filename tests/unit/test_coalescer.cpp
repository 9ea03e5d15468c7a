// Request coalescing on a real multi-threaded io_context: concurrent callers of one key share
// one run of the work; a later caller starts afresh; a failure reaches every waiter.
#include <catch2/catch.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <atomic>
#include <set>
#include <thread>

#include "gateway/service/coalescer.hpp"

namespace asio = boost::asio;
using hkpgw::gateway::Coalescer;

namespace {

struct Harness {
  asio::io_context io{2};
  Coalescer<std::string> coalescer;
  std::atomic<int> runs{0};
  std::atomic<int> done{0}, failed{0};
  std::mutex mutex;
  std::vector<std::shared_ptr<const std::string>> results;

  asio::awaitable<std::string> work(std::string value, bool fail) {
    ++runs;
    const auto ex = co_await asio::this_coro::executor;  // one co_await per statement (GCC 12)
    asio::steady_timer t(ex, std::chrono::milliseconds(50));
    co_await t.async_wait(asio::use_awaitable);
    if (fail) throw std::runtime_error("upstream exploded");
    co_return value;
  }

  void call(const std::string& key, bool fail = false) {
    asio::co_spawn(
        asio::make_strand(io),
        [this, key, fail]() -> asio::awaitable<void> {
          try {
            auto w = [&] { return work("value of " + key, fail); };
            auto r = co_await coalescer.run(key, w);
            std::lock_guard lock(mutex);
            results.push_back(r);
            ++done;
          } catch (const std::exception&) {
            ++failed;
          }
        },
        asio::detached);
  }

  void run_all() {
    std::thread other([this] { io.run(); });
    io.run();
    other.join();
    io.restart();
  }
};

}  // namespace

TEST_CASE("concurrent callers of one key share one run of the work", "[coalescer]") {
  Harness h;
  for (int i = 0; i < 40; ++i) h.call("k");
  h.call("other");
  h.run_all();
  CHECK(h.done == 41);
  CHECK(h.runs == 2);  // one for "k", one for "other"
  std::set<const std::string*> distinct;  // one shared result per key
  for (const auto& r : h.results) distinct.insert(r.get());
  CHECK(distinct.size() == 2);
  CHECK(h.coalescer.size() == 0);  // nothing left behind

  h.call("k");  // later: a new run
  h.run_all();
  CHECK(h.runs == 3);
}

TEST_CASE("a failing run fails every waiter, and the next caller starts afresh", "[coalescer]") {
  Harness h;
  for (int i = 0; i < 10; ++i) h.call("k", true);
  h.run_all();
  CHECK(h.runs == 1);
  CHECK(h.failed == 10);
  CHECK_FALSE(h.coalescer.running("k"));
  h.call("k");
  h.run_all();
  CHECK(h.done == 1);
  CHECK(h.runs == 2);
}

TEST_CASE("a run with a tail stays settled until the tail ends, and its waiters do not wait for it",
          "[coalescer]") {
  asio::io_context io;
  Coalescer<std::string> coalescer;
  int runs = 0;
  bool tail_done = false;
  std::vector<std::pair<std::string, bool>> seen;  // result, settled
  asio::steady_timer tail_timer(io);
  auto work = [&]() -> asio::awaitable<std::string> {
    ++runs;
    co_return "fetched " + std::to_string(runs);
  };
  auto tail = [&](std::string& value) -> Coalescer<std::string>::Tail {
    value += " (remembered)";  // the tail sees the value before it is shared
    return [](asio::steady_timer& t, bool& done) -> asio::awaitable<void> {
      t.expires_after(std::chrono::milliseconds(200));
      co_await t.async_wait(asio::use_awaitable);
      done = true;
    }(tail_timer, tail_done);
  };
  auto call = [&]() -> asio::awaitable<void> {
    auto r = co_await coalescer.run("k", work, tail);
    seen.emplace_back(*r.result, r.settled);
  };
  asio::co_spawn(io, call(), asio::detached);
  io.run_for(std::chrono::milliseconds(50));
  REQUIRE(seen.size() == 1);  // answered while the tail still runs
  CHECK(seen[0] == std::pair<std::string, bool>{"fetched 1 (remembered)", false});
  CHECK_FALSE(tail_done);
  CHECK(coalescer.running("k"));

  asio::co_spawn(io, call(), asio::detached);  // during the tail: the settled result, no run
  io.run_for(std::chrono::milliseconds(50));
  REQUIRE(seen.size() == 2);
  CHECK(seen[1] == std::pair<std::string, bool>{"fetched 1 (remembered)", true});
  CHECK(runs == 1);

  io.run_for(std::chrono::milliseconds(300));  // the tail ends: the entry goes
  CHECK(tail_done);
  CHECK_FALSE(coalescer.running("k"));
  io.restart();
  asio::co_spawn(io, call(), asio::detached);
  io.run();
  REQUIRE(seen.size() == 3);
  CHECK(runs == 2);
  CHECK(seen[2].second == false);
}
