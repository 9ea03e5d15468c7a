// A background loop: `step` runs on a strand of its own, then again `period` after it ended,
// until `running` turns false (checked before each step). A step that throws is logged as
// `event` with the error, and the next one runs as usual: a detached coroutine's exception
// would otherwise end the process. The outbox retrier and the cluster's spend reports use it.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <atomic>
#include <chrono>
#include <functional>
#include <string>

namespace hkpgw::gateway {

// Returns what runs the next step now rather than at the end of the period (from any thread;
// a step running when it is called is followed by another at once).
std::function<void()> run_periodically(boost::asio::any_io_executor executor,
                                       std::chrono::milliseconds period,
                                       const std::atomic<bool>& running, std::string event,
                                       std::function<boost::asio::awaitable<void>()> step);

}  // namespace hkpgw::gateway
