// The background loop (gateway/service/periodic.hpp) on a real io_context: a step runs at once,
// then once a period; a wake runs the next step now, also when it comes while a step runs; a
// step that throws does not end the loop; clearing `running` ends it.
#include <catch2/catch.hpp>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <atomic>
#include <thread>

#include "gateway/service/periodic.hpp"
#include "support/harness.hpp"

namespace asio = boost::asio;
using hkpgw::gateway::run_periodically;
using hkpgw::test::eventually;

TEST_CASE("a periodic loop wakes on demand and survives a step that throws", "[unit][periodic]") {
  asio::io_context io;
  auto guard = asio::make_work_guard(io);
  std::atomic<bool> running{true};
  std::atomic<int> steps{0};
  std::atomic<bool> slow{false}, throw_next{false};
  auto wake = run_periodically(io.get_executor(), std::chrono::hours(1), running, "test_failed",
                               [&]() -> asio::awaitable<void> {
                                 ++steps;
                                 if (throw_next.exchange(false)) throw std::runtime_error("boom");
                                 if (slow) {
                                   // One co_await per statement (ARCHITECTURE.md, GCC 12 traps):
                                   // inside the timer's argument list it is miscompiled.
                                   const auto ex = co_await asio::this_coro::executor;
                                   asio::steady_timer t(ex, std::chrono::milliseconds(300));
                                   co_await t.async_wait(asio::use_awaitable);
                                 }
                               });
  std::thread runner([&] { io.run(); });
  CHECK(eventually([&] { return steps == 1; }));  // at once, not after an hour
  wake();
  CHECK(eventually([&] { return steps == 2; }));
  // A wake while a step runs: another step follows it at once.
  slow = true;
  wake();
  CHECK(eventually([&] { return steps == 3; }));
  wake();  // during the third step's 300 ms
  CHECK(eventually([&] { return steps == 4; }));
  slow = false;
  // A step that throws is logged; the loop goes on.
  throw_next = true;
  wake();
  CHECK(eventually([&] { return steps == 5; }));
  wake();
  CHECK(eventually([&] { return steps == 6; }));
  // Stopped: a wake ends the wait and the loop with it.
  running = false;
  wake();
  guard.reset();
  runner.join();  // returns only once the loop has ended (nothing else keeps io busy)
  CHECK(steps == 6);
}

TEST_CASE("a wake during a quick step runs one more step, not two", "[unit][periodic]") {
  asio::io_context io;
  auto guard = asio::make_work_guard(io);
  std::atomic<bool> running{true};
  std::atomic<int> steps{0};
  std::function<void()> wake;
  wake = run_periodically(io.get_executor(), std::chrono::hours(1), running, "test_failed",
                          [&]() -> asio::awaitable<void> {
                            // The second step wakes the loop while it runs, and never yields:
                            // the wake's cancel waits in the strand behind the loop.
                            if (++steps == 2) wake();
                            co_return;
                          });
  std::thread runner([&] { io.run(); });
  CHECK(eventually([&] { return steps == 1; }));
  wake();
  CHECK(eventually([&] { return steps == 3; }));  // the wake, then the one asked during step 2
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  CHECK(steps == 3);  // and no third: the stale cancel must not end the hour's wait
  running = false;
  wake();
  guard.reset();
  runner.join();
  CHECK(steps == 3);
}
