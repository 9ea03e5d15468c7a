#include "gateway/service/work_pool.hpp"

#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <memory>

#include "config/named_thread.hpp"

namespace hkpgw::gateway {

namespace asio = boost::asio;

namespace {
// Lower than the network threads (0), not so low that the pool starves on a busy machine.
constexpr int kPoolNice = 10;
}  // namespace

WorkPool::WorkPool(std::size_t threads, std::size_t max_queued) : max_queued_(max_queued) {
  if (threads == 0) threads = std::max(1u, std::thread::hardware_concurrency());
  for (std::size_t i = 0; i < threads; ++i) {
    threads_.push_back(named_thread("hkpgw-pool-" + std::to_string(i), [this] { work(); }));
  }
}

WorkPool::~WorkPool() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
    jobs_.clear();
  }
  wake_.notify_all();
  for (auto& t : threads_) t.join();
}

std::size_t WorkPool::queued() const {
  std::lock_guard lock(mutex_);
  return jobs_.size();
}

bool WorkPool::enqueue(std::function<void()> job, bool bounded) {
  {
    std::lock_guard lock(mutex_);
    if (stopping_ || (bounded && jobs_.size() >= max_queued_)) return false;
    jobs_.push_back(std::move(job));
  }
  wake_.notify_one();
  return true;
}

void WorkPool::work() {
  // Linux applies nice per thread: only this one is lowered.
  setpriority(PRIO_PROCESS, static_cast<id_t>(::syscall(SYS_gettid)), kPoolNice);
  while (true) {
    std::function<void()> job;
    {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [&] { return stopping_ || !jobs_.empty(); });
      if (stopping_) return;
      job = std::move(jobs_.front());
      jobs_.pop_front();
    }
    job();
  }
}

asio::awaitable<bool> WorkPool::execute(std::function<void()> job, bool bounded) {
  // A named initiation (GCC 12: no lambda temporaries inside a co_await, ARCHITECTURE.md).
  auto initiation = [this, bounded](auto handler, std::function<void()> work) {
    auto h = std::make_shared<decltype(handler)>(std::move(handler));
    auto resume = [h](bool ran) {
      auto ex = asio::get_associated_executor(*h);
      asio::post(ex, [h, ran]() mutable { std::move (*h)(ran); });
    };
    const bool queued = enqueue(
        [resume, work = std::move(work)] {
          work();
          resume(true);
        },
        bounded);
    if (!queued) resume(false);
  };
  const bool ran = co_await asio::async_initiate<decltype(asio::use_awaitable), void(bool)>(
      initiation, asio::use_awaitable, std::move(job));
  co_return ran;
}

}  // namespace hkpgw::gateway
