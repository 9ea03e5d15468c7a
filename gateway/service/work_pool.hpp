// The pool for CPU-heavy OpenPGP work (parse, clean, verify, merge), separate from the
// io_context threads that serve cached answers: a key with hundreds of signatures to verify
// costs the pool seconds, never a cached lookup its latency. The pool's threads run at a lower
// scheduling priority (nice 10), so when the machine is busy the kernel serves network threads
// first.
//
// Two lanes share it. Lookups (an upstream answer to parse, a cache scan: their number is bounded
// by the coalescer and the upstream connection pools, not by clients) go first. Clients' jobs
// (submissions, named by the client's address) hold at most all workers but one, and at most one
// each, and waiting clients take turns: two hostile uploads cannot take every worker from
// everyone's misses, and one client's queue of uploads does not hold another client's behind
// it. `try_run` refuses when `max_queued` jobs already wait (the caller answers 503 with
// Retry-After); `run` always queues.
#pragma once

#include <atomic>

#include <boost/asio/awaitable.hpp>
#include <condition_variable>
#include <deque>
#include <exception>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <stdexcept>
#include <thread>
#include <type_traits>
#include <vector>

namespace hkpgw::gateway {

class WorkPool {
 public:
  // `threads` 0 = one per core.
  WorkPool(std::size_t threads, std::size_t max_queued);
  ~WorkPool();  // stops: jobs not started are dropped, running ones finish; joins
  WorkPool(const WorkPool&) = delete;
  WorkPool& operator=(const WorkPool&) = delete;

  // Runs fn() on a pool thread, in the lookups' lane; the calling coroutine resumes on its own
  // executor with the result. An exception from fn is rethrown in the caller.
  template <class F>
  boost::asio::awaitable<std::invoke_result_t<F&>> run(F fn) {
    std::optional<std::invoke_result_t<F&>> result = co_await submit(std::move(fn), false, {});
    if (!result) throw std::runtime_error("the work pool has stopped");  // only at shutdown
    co_return std::move(*result);
  }

  // As run(), but nullopt at once when the queue is full; in `client`'s lane when one is named.
  template <class F>
  boost::asio::awaitable<std::optional<std::invoke_result_t<F&>>> try_run(F fn,
                                                                          std::string client = {}) {
    std::optional<std::invoke_result_t<F&>> result =
        co_await submit(std::move(fn), true, std::move(client));
    co_return result;
  }

  std::size_t threads() const { return threads_.size(); }
  std::size_t queued() const;  // jobs waiting, not counting running ones
  // keys.work_queue changed by a reload: `try_run` refuses from the next job on.
  void set_max_queued(std::size_t max) { max_queued_.store(max, std::memory_order_relaxed); }

 private:
  // The result of fn() run on the pool; nullopt only when `bounded` and the queue was full.
  template <class F>
  boost::asio::awaitable<std::optional<std::invoke_result_t<F&>>> submit(F fn, bool bounded,
                                                                        std::string client) {
    std::optional<std::invoke_result_t<F&>> result;
    std::exception_ptr error;
    std::function<void()> job = [&] {
      try {
        result.emplace(fn());
      } catch (...) {
        error = std::current_exception();
      }
    };
    const bool ran = co_await execute(std::move(job), bounded, std::move(client));
    if (ran && error) std::rethrow_exception(error);
    co_return result;
  }

  // Queues `job`; resumes the caller (true) once it ran, or (false) at once when `bounded` and
  // the queue is full.
  boost::asio::awaitable<bool> execute(std::function<void()> job, bool bounded,
                                       std::string client);
  bool enqueue(std::function<void()> job, bool bounded, std::string client);
  // The next job a free worker may take, or nullopt; under mutex_. `client` is its lane.
  std::optional<std::function<void()>> pick(std::string& client);
  void finished(const std::string& client);  // a client's job ended
  void work();

  std::atomic<std::size_t> max_queued_;
  std::size_t client_workers_ = 1;  // all but one, at least one
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::function<void()>> lookups_;
  std::map<std::string, std::deque<std::function<void()>>> by_client_;
  std::deque<std::string> turns_;  // clients with jobs waiting and none running, next first
  std::set<std::string> running_;  // clients with a job running (one at most each)
  std::size_t queued_ = 0;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace hkpgw::gateway
