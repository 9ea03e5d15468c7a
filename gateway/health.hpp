// Health of one upstream keyserver, fed by active probes and by live requests (passive failure
// counting). `unhealthy_threshold` consecutive failures of either kind take an upstream out of the
// request path; `healthy_threshold` consecutive successes bring it back. A success on a live
// request counts like a successful probe: in panic mode (every upstream unhealthy, so all are
// tried anyway) the first one that answers earns its way back without waiting for the prober.
//
// Pure state, no I/O, no clock of its own: callers pass the time, so unit tests drive it with a
// fake clock. Thread-safe; healthy() is one relaxed atomic load for the request path.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>

namespace hkpgw::gateway {

class HealthState {
 public:
  using TimePoint = std::chrono::steady_clock::time_point;
  enum class Change { none, went_down, came_back };
  struct Thresholds {
    unsigned unhealthy = 3;  // consecutive failures before the upstream is skipped
    unsigned healthy = 2;    // consecutive successes before it is used again
  };
  struct View {
    bool healthy = true;
    unsigned consecutive_failures = 0;
    unsigned consecutive_successes = 0;
    TimePoint since{};  // last change of state (the epoch = healthy since start)
    std::string last_error;
    std::uint64_t probes = 0, probe_failures = 0;
  };

  bool healthy() const noexcept { return healthy_.load(std::memory_order_relaxed); }

  // Returns the state change this event caused, so the caller logs each transition once.
  Change failure(TimePoint now, Thresholds t, std::string_view why, bool probe);
  Change success(TimePoint now, Thresholds t, bool probe);
  View view() const;

  // Probe scheduling. `jitter` in [-1, 1] spreads probes of many gateways (and upstreams) over
  // +-20% of the interval so they do not arrive in lockstep.
  bool claim_probe(TimePoint now, std::chrono::milliseconds interval, double jitter);
  void make_probe_due();

 private:
  mutable std::mutex mutex_;
  std::atomic<bool> healthy_{true};
  View v_;
  TimePoint next_probe_{};  // the epoch: probe at once after start
};

}  // namespace hkpgw::gateway
