// The OpenPGP work pool's sharing, on real threads: clients' submissions never hold every
// worker, so a cache miss's parse runs while they do; and waiting clients take turns, so one
// client's queue of uploads does not hold another's behind it. Jobs block on gates the test
// opens, so the order is decided by the pool alone, never by timing.
#include <catch2/catch.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "gateway/service/work_pool.hpp"

namespace asio = boost::asio;
using hkpgw::gateway::WorkPool;

namespace {

// Jobs that wait until the test opens their gate, and a record of which ran in what order.
struct Board {
  std::mutex mutex;
  std::condition_variable changed;
  std::vector<std::string> started, finished;
  std::vector<std::string> open;

  void job(const std::string& name) {
    std::unique_lock lock(mutex);
    started.push_back(name);
    changed.notify_all();
    changed.wait(lock, [&] { return std::find(open.begin(), open.end(), name) != open.end(); });
    finished.push_back(name);
    changed.notify_all();
  }
  void release(const std::string& name) {
    std::lock_guard lock(mutex);
    open.push_back(name);
    changed.notify_all();
  }
  // Waits (at most 10 s: a failure, not a timing) until `name` has started; whether it did.
  bool wait_started(const std::string& name) {
    std::unique_lock lock(mutex);
    return changed.wait_for(lock, std::chrono::seconds(10), [&] {
      return std::find(started.begin(), started.end(), name) != started.end();
    });
  }
  bool wait_finished(std::size_t n) {
    std::unique_lock lock(mutex);
    return changed.wait_for(lock, std::chrono::seconds(10), [&] { return finished.size() >= n; });
  }
  bool has_started(const std::string& name) {
    std::lock_guard lock(mutex);
    return std::find(started.begin(), started.end(), name) != started.end();
  }
};

struct Loop {
  asio::io_context io;
  asio::executor_work_guard<asio::io_context::executor_type> guard = asio::make_work_guard(io);
  std::thread thread{[this] { io.run(); }};
  ~Loop() {
    guard.reset();
    io.stop();
    thread.join();
  }
};

void submit(Loop& loop, WorkPool& pool, Board& board, const std::string& name,
            const std::string& client) {
  asio::co_spawn(
      loop.io,
      [&pool, &board, name, client]() -> asio::awaitable<void> {
        auto job = [&board, name] {
          board.job(name);
          return 0;
        };
        if (client.empty()) {
          co_await pool.run(job);
        } else {
          co_await pool.try_run(job, client);
        }
      },
      asio::detached);
}

// Client 192.0.2.1 queues a1, a2 and a3; true once a1 runs.
bool one_client_queues_three(Loop& loop, WorkPool& pool, Board& board) {
  for (const char* n : {"a1", "a2", "a3"}) submit(loop, pool, board, n, "192.0.2.1");
  return board.wait_started("a1");
}

}  // namespace

TEST_CASE("one client's submissions leave a worker to cache misses", "[unit][work_pool]") {
  Board board;
  Loop loop;
  {
    WorkPool pool(2, 64);
    REQUIRE(one_client_queues_three(loop, pool, board));
    // A miss's parse gets the other worker while a1 still holds the first (before: a2 took it,
    // and the miss waited behind every upload).
    submit(loop, pool, board, "miss", "");
    CHECK(board.wait_started("miss"));
    CHECK_FALSE(board.has_started("a2"));
    for (const char* n : {"miss", "a1", "a2", "a3"}) board.release(n);
    CHECK(board.wait_finished(4));
  }  // the pool joins its threads
  CHECK(board.finished.size() == 4);
}

TEST_CASE("clients waiting for the pool take turns", "[unit][work_pool]") {
  Board board;
  Loop loop;
  {
    WorkPool pool(2, 64);
    REQUIRE(one_client_queues_three(loop, pool, board));
    submit(loop, pool, board, "b1", "198.51.100.7");
    // b1 arrives after a2 and a3 are queued, and still runs next.
    {
      std::unique_lock lock(board.mutex);
      board.changed.wait_for(lock, std::chrono::milliseconds(200));  // let a wrong pool show
    }
    board.release("a1");
    REQUIRE(board.wait_started("b1"));
    CHECK_FALSE(board.has_started("a2"));
    for (const char* n : {"b1", "a2", "a3"}) board.release(n);
    CHECK(board.wait_finished(4));
  }
  REQUIRE(board.started.size() == 4);
  CHECK(board.started[1] == "b1");
}

TEST_CASE("a full queue refuses at once, a lookup always queues", "[unit][work_pool]") {
  Board board;
  Loop loop;
  std::atomic<int> refused{0};
  {
    WorkPool pool(1, 1);
    submit(loop, pool, board, "a1", "192.0.2.1");
    REQUIRE(board.wait_started("a1"));
    submit(loop, pool, board, "a2", "192.0.2.1");  // queued: the one place
    asio::co_spawn(
        loop.io,
        [&]() -> asio::awaitable<void> {
          auto job = [] { return 0; };
          auto r = co_await pool.try_run(job, "198.51.100.7");
          if (!r) ++refused;
        },
        asio::detached);
    submit(loop, pool, board, "miss", "");  // lookups are not refused
    for (int i = 0; i < 200 && refused.load() == 0; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    CHECK(refused.load() == 1);
    for (const char* n : {"a1", "a2", "miss"}) board.release(n);
    CHECK(board.wait_finished(3));
  }
  CHECK(board.finished.size() == 3);
}
