// Request coalescing: concurrent callers with the same key share one piece of work. The first
// caller runs it; the others wait (without a thread) and get the same shared result. The entry
// is gone as soon as the work is done, so a later caller starts afresh.
#pragma once

#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <functional>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <vector>

namespace hkpgw::gateway {

template <class T>
class Coalescer {
 public:
  // `work` is a callable returning awaitable<T>. Returns the shared result; throws
  // std::runtime_error in the followers when the leader's work threw (the leader gets the
  // original exception).
  template <class Work>
  boost::asio::awaitable<std::shared_ptr<const T>> run(const std::string& key, Work work) {
    std::shared_ptr<Entry> e;
    bool leader = false;
    {
      std::lock_guard lock(mutex_);
      auto& slot = inflight_[key];
      if (!slot) {
        slot = std::make_shared<Entry>();
        leader = true;
      }
      e = slot;
    }
    if (!leader) {
      co_await wait(e);
      if (!e->result) throw std::runtime_error("the shared upstream fetch failed");
      co_return e->result;
    }
    std::shared_ptr<const T> result;
    try {
      // Named, not passed straight into make_shared: GCC 12 mishandles co_await inside
      // argument lists and braced initialisers.
      T value = co_await work();
      result = std::make_shared<const T>(std::move(value));
    } catch (...) {
      finish(key, e, nullptr);
      throw;
    }
    finish(key, e, result);
    co_return result;
  }

  bool running(const std::string& key) const {
    std::lock_guard lock(mutex_);
    return inflight_.contains(key);
  }
  std::size_t size() const {
    std::lock_guard lock(mutex_);
    return inflight_.size();
  }

 private:
  struct Entry {
    bool done = false;
    std::shared_ptr<const T> result;
    std::vector<std::function<void()>> waiters;
  };

  boost::asio::awaitable<void> wait(std::shared_ptr<Entry> e) {
    namespace asio = boost::asio;
    // A named initiation, not a lambda temporary inside the co_await: GCC 12 destroys such
    // temporaries twice, which here released the entry one time too many.
    auto initiation = [this, e](auto handler) {
      auto h = std::make_shared<decltype(handler)>(std::move(handler));
      auto resume = [h] {
        auto ex = asio::get_associated_executor(*h);
        asio::post(ex, [h]() mutable { std::move(*h)(); });
      };
      {
        std::lock_guard lock(mutex_);
        if (!e->done) {
          e->waiters.push_back(std::move(resume));
          return;
        }
      }
      resume();
    };
    co_await asio::async_initiate<decltype(asio::use_awaitable), void()>(initiation,
                                                                         asio::use_awaitable);
  }

  void finish(const std::string& key, const std::shared_ptr<Entry>& e,
              std::shared_ptr<const T> result) {
    std::vector<std::function<void()>> waiters;
    {
      std::lock_guard lock(mutex_);
      e->result = std::move(result);
      e->done = true;
      waiters.swap(e->waiters);
      inflight_.erase(key);
    }
    for (auto& w : waiters) w();
  }

  mutable std::mutex mutex_;
  std::unordered_map<std::string, std::shared_ptr<Entry>> inflight_;
};

}  // namespace hkpgw::gateway
