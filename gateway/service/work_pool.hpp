// The pool for CPU-heavy OpenPGP work (parse, clean, verify, merge), separate from the
// io_context threads that serve cached answers: a key with hundreds of signatures to verify
// costs the pool seconds, never a cached lookup its latency. The pool's threads run at a lower
// scheduling priority (nice 10), so when the machine is busy the kernel serves network threads
// first. Jobs wait in one FIFO queue; `try_run` refuses when `max_queued` jobs already wait
// (the caller answers 503 with Retry-After), `run` always queues (lookups: their number is
// bounded by the coalescer and the upstream connection pools, not by clients).
#pragma once

#include <boost/asio/awaitable.hpp>
#include <condition_variable>
#include <deque>
#include <exception>
#include <functional>
#include <mutex>
#include <optional>
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

  // Runs fn() on a pool thread; the calling coroutine resumes on its own executor with the
  // result. An exception from fn is rethrown in the caller.
  template <class F>
  boost::asio::awaitable<std::invoke_result_t<F&>> run(F fn) {
    std::optional<std::invoke_result_t<F&>> result = co_await submit(std::move(fn), false);
    if (!result) throw std::runtime_error("the work pool has stopped");  // only at shutdown
    co_return std::move(*result);
  }

  // As run(), but nullopt at once when the queue is full.
  template <class F>
  boost::asio::awaitable<std::optional<std::invoke_result_t<F&>>> try_run(F fn) {
    std::optional<std::invoke_result_t<F&>> result = co_await submit(std::move(fn), true);
    co_return result;
  }

  std::size_t threads() const { return threads_.size(); }
  std::size_t queued() const;  // jobs waiting, not counting running ones

 private:
  // The result of fn() run on the pool; nullopt only when `bounded` and the queue was full.
  template <class F>
  boost::asio::awaitable<std::optional<std::invoke_result_t<F&>>> submit(F fn, bool bounded) {
    std::optional<std::invoke_result_t<F&>> result;
    std::exception_ptr error;
    std::function<void()> job = [&] {
      try {
        result.emplace(fn());
      } catch (...) {
        error = std::current_exception();
      }
    };
    const bool ran = co_await execute(std::move(job), bounded);
    if (ran && error) std::rethrow_exception(error);
    co_return result;
  }

  // Queues `job`; resumes the caller (true) once it ran, or (false) at once when `bounded` and
  // the queue is full.
  boost::asio::awaitable<bool> execute(std::function<void()> job, bool bounded);
  bool enqueue(std::function<void()> job, bool bounded);
  void work();

  const std::size_t max_queued_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::function<void()>> jobs_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace hkpgw::gateway
