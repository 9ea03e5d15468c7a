#include "gateway/service/cache_writer.hpp"

#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <memory>
#include <span>

#include "gateway/observe/log.hpp"

namespace hkpgw::gateway {

namespace asio = boost::asio;

asio::awaitable<std::error_code> commit(cache::Store& store, cache::WriteBatch batch) {
  // A named initiation (GCC 12: no lambda temporaries inside a co_await, ARCHITECTURE.md).
  auto initiation = [&store](auto handler, cache::WriteBatch b) {
    auto h = std::make_shared<decltype(handler)>(std::move(handler));
    store.write(std::move(b), [h](std::error_code ec) {
      auto ex = asio::get_associated_executor(*h);
      asio::post(ex, [h, ec]() mutable { std::move (*h)(ec); });
    });
  };
  std::error_code ec = co_await asio::async_initiate<decltype(asio::use_awaitable),
                                                     void(std::error_code)>(
      initiation, asio::use_awaitable, std::move(batch));
  co_return ec;
}

void purge_blocked(cache::Store& store, const cache::Blocklist& blocked) {
  if (blocked.empty()) return;
  cache::WriteBatch batch;
  const auto& all = blocked.all();
  store.visit_fingerprints(std::span(all.data(), all.size()), [&batch](const cache::KeyRecordView& v) {
    batch.purge.push_back(v.fingerprint);
  });
  const std::size_t n = batch.purge.size();
  const std::size_t listed = all.size();
  if (n == 0) return;
  store.write(std::move(batch), [n, listed](std::error_code ec) {
    if (ec) {
      log::error("keys_blocked", {{"error", ec.message()}, {"effect", "blocked keys stay cached"}});
      return;
    }
    log::info("keys_blocked", {{"purged", std::to_string(n)}, {"listed", std::to_string(listed)}});
  });
}

}  // namespace hkpgw::gateway
