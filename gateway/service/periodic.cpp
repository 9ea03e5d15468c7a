#include "gateway/service/periodic.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <memory>

#include "gateway/observe/log.hpp"

namespace hkpgw::gateway {

namespace asio = boost::asio;

std::function<void()> run_periodically(asio::any_io_executor executor,
                                       std::chrono::milliseconds period,
                                       const std::atomic<bool>& running, std::string event,
                                       std::function<asio::awaitable<void>()> step) {
  auto strand = asio::make_strand(executor);
  auto tick = std::make_shared<asio::steady_timer>(strand);
  auto woken = std::make_shared<std::atomic<bool>>(false);
  asio::co_spawn(
      strand,
      [tick, woken, period, &running, event = std::move(event),
       step = std::move(step)]() -> asio::awaitable<void> {
        while (running) {
          try {
            co_await step();
          } catch (const std::exception& e) {
            log::error(event, {{"error", e.what()}});
          }
          if (woken->exchange(false)) continue;  // woken while the step ran: once more, now
          tick->expires_after(period);
          co_await tick->async_wait(asio::as_tuple(asio::use_awaitable));
          woken->store(false);
        }
      },
      asio::detached);
  // The cancel runs on the strand, so it finds the loop either waiting (and ends the wait) or
  // between a step and its wait, where the flag is read first. It cancels only while the flag is
  // still set: a wake during a quick step is taken by the flag (one more step), and its cancel,
  // run after that step had armed the next wait, ran a second, unasked one.
  return [strand, tick, woken] {
    woken->store(true);
    asio::post(strand, [tick, woken] {
      if (woken->load()) tick->cancel();
    });
  };
}

}  // namespace hkpgw::gateway
