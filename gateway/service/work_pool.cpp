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
  client_workers_ = std::max<std::size_t>(1, threads - 1);
  for (std::size_t i = 0; i < threads; ++i) {
    threads_.push_back(named_thread("hkpgw-pool-" + std::to_string(i), [this] { work(); }));
  }
}

WorkPool::~WorkPool() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
    lookups_.clear();
    by_client_.clear();
    turns_.clear();
  }
  wake_.notify_all();
  for (auto& t : threads_) t.join();
}

std::size_t WorkPool::queued() const {
  std::lock_guard lock(mutex_);
  return queued_;
}

bool WorkPool::enqueue(std::function<void()> job, bool bounded, std::string client) {
  {
    std::lock_guard lock(mutex_);
    if (stopping_ || (bounded && queued_ >= max_queued_.load(std::memory_order_relaxed))) return false;
    ++queued_;
    if (client.empty()) {
      lookups_.push_back(std::move(job));
    } else {
      auto& waiting = by_client_[client];
      // A client with a job running takes its turn again when that job ends.
      if (waiting.empty() && !running_.count(client)) turns_.push_back(client);
      waiting.push_back(std::move(job));
    }
  }
  wake_.notify_one();
  return true;
}

std::optional<std::function<void()>> WorkPool::pick(std::string& client) {
  client.clear();
  if (!lookups_.empty()) {
    auto job = std::move(lookups_.front());
    lookups_.pop_front();
    --queued_;
    return job;
  }
  if (running_.size() >= client_workers_ || turns_.empty()) return std::nullopt;
  client = std::move(turns_.front());
  turns_.pop_front();
  auto it = by_client_.find(client);
  auto job = std::move(it->second.front());
  it->second.pop_front();
  if (it->second.empty()) by_client_.erase(it);
  --queued_;
  running_.insert(client);
  return job;
}

void WorkPool::finished(const std::string& client) {
  {
    std::lock_guard lock(mutex_);
    running_.erase(client);
    // Its next job waits behind every client that waited meanwhile.
    if (by_client_.count(client)) turns_.push_back(client);
  }
  wake_.notify_all();  // the client lane has room again
}

void WorkPool::work() {
  // Linux applies nice per thread: only this one is lowered.
  setpriority(PRIO_PROCESS, static_cast<id_t>(::syscall(SYS_gettid)), kPoolNice);
  std::string client;
  while (true) {
    std::optional<std::function<void()>> job;
    {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [&] { return stopping_ || (job = pick(client)).has_value(); });
      if (stopping_) return;
    }
    (*job)();
    if (!client.empty()) finished(client);
  }
}

asio::awaitable<bool> WorkPool::execute(std::function<void()> job, bool bounded,
                                        std::string client) {
  // A named initiation (GCC 12: no lambda temporaries inside a co_await, ARCHITECTURE.md).
  auto initiation = [this, bounded, &client](auto handler, std::function<void()> work) {
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
        bounded, std::move(client));
    if (!queued) resume(false);
  };
  const bool ran = co_await asio::async_initiate<decltype(asio::use_awaitable), void(bool)>(
      initiation, asio::use_awaitable, std::move(job));
  co_return ran;
}

}  // namespace hkpgw::gateway
