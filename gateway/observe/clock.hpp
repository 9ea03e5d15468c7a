// Wall-clock time as the cache and the services count it: whole seconds since the epoch. The
// services take a Clock so that tests can pass their own.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>

namespace hkpgw::gateway {

using Clock = std::function<std::int64_t()>;  // seconds since the epoch

inline std::int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace hkpgw::gateway
