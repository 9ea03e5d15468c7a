// Request coalescing: concurrent callers with the same key share one piece of work. The first
// caller runs it; the others wait (without a thread) and get the same shared result. The entry
// is gone as soon as the work is done, so a later caller starts afresh; or, when the work left
// a tail to finish (a cache write the answer need not wait for), as soon as that tail is done:
// until then a new caller gets the settled result at once, as if it had been cached.
#pragma once

#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <vector>

namespace hkpgw::gateway {

template <class T>
class Coalescer {
 public:
  using Tail = std::optional<boost::asio::awaitable<void>>;
  struct Shared {
    std::shared_ptr<const T> result;
    bool settled = false;  // the work had finished before this caller came: no wait at all
  };

  // `work` is a callable returning awaitable<T>. Returns the shared result; throws
  // std::runtime_error in the followers when the leader's work threw (the leader gets the
  // original exception).
  template <class Work>
  boost::asio::awaitable<std::shared_ptr<const T>> run(const std::string& key, Work work) {
    auto no_tail = [](T&) { return Tail{}; };
    auto shared_run = run(key, std::move(work), no_tail);
    Shared shared = co_await std::move(shared_run);
    co_return std::move(shared.result);
  }

  // As above; `tail(T&)` runs on the finished value before it is shared, and may take from it
  // an awaitable (owning what it needs) that runs detached once every waiter has the result.
  // The entry stays, settled, until that awaitable ends (or throws, which is swallowed).
  template <class Work, class TailOf>
  boost::asio::awaitable<Shared> run(const std::string& key, Work work, TailOf tail) {
    std::shared_ptr<Entry> e;
    bool leader = false, settled = false;
    {
      std::lock_guard lock(mutex_);
      auto& slot = inflight_[key];
      if (!slot) {
        slot = std::make_shared<Entry>();
        leader = true;
      }
      e = slot;
      settled = e->done;  // an entry that stays once done has its result
    }
    if (settled) co_return Shared{e->result, true};
    if (!leader) {
      co_await wait(e);
      if (!e->result) throw std::runtime_error("the shared upstream fetch failed");
      co_return Shared{e->result, false};
    }
    std::shared_ptr<const T> result;
    Tail rest;
    try {
      // Named, not passed straight into make_shared: GCC 12 mishandles co_await inside
      // argument lists and braced initialisers.
      T value = co_await work();
      rest = tail(value);
      result = std::make_shared<const T>(std::move(value));
    } catch (...) {
      finish(key, e, nullptr, true);
      throw;
    }
    finish(key, e, result, !rest);
    if (rest) {
      auto ex = co_await boost::asio::this_coro::executor;
      boost::asio::co_spawn(ex, settle(key, e, std::move(*rest)), boost::asio::detached);
    }
    co_return Shared{result, false};
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

  // Shares the result with every waiter; `erase`: the entry goes too (no tail to wait for).
  void finish(const std::string& key, const std::shared_ptr<Entry>& e,
              std::shared_ptr<const T> result, bool erase) {
    std::vector<std::function<void()>> waiters;
    {
      std::lock_guard lock(mutex_);
      e->result = std::move(result);
      e->done = true;
      waiters.swap(e->waiters);
      if (erase) inflight_.erase(key);
    }
    for (auto& w : waiters) w();
  }

  boost::asio::awaitable<void> settle(std::string key, std::shared_ptr<Entry> e,
                                      boost::asio::awaitable<void> rest) {
    try {
      co_await std::move(rest);
    } catch (...) {  // the tail's own failure is its business (it logs); the entry must go
    }
    std::lock_guard lock(mutex_);
    if (auto it = inflight_.find(key); it != inflight_.end() && it->second == e) {
      inflight_.erase(it);
    }
  }

  mutable std::mutex mutex_;
  std::unordered_map<std::string, std::shared_ptr<Entry>> inflight_;
};

}  // namespace hkpgw::gateway
