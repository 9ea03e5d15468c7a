#include "gateway/service/periodic.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "gateway/observe/log.hpp"

namespace hkpgw::gateway {

namespace asio = boost::asio;

void run_periodically(asio::any_io_executor executor, std::chrono::milliseconds period,
                      const std::atomic<bool>& running, std::string event,
                      std::function<asio::awaitable<void>()> step) {
  auto strand = asio::make_strand(executor);
  asio::co_spawn(
      strand,
      [strand, period, &running, event = std::move(event),
       step = std::move(step)]() -> asio::awaitable<void> {
        asio::steady_timer tick(strand);
        while (running) {
          try {
            co_await step();
          } catch (const std::exception& e) {
            log::error(event, {{"error", e.what()}});
          }
          tick.expires_after(period);
          co_await tick.async_wait(asio::as_tuple(asio::use_awaitable));
        }
      },
      asio::detached);
}

}  // namespace hkpgw::gateway
