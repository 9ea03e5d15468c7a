// Health of one upstream keyserver, fed by active probes and by live requests (passive failure
// counting). `unhealthy_threshold` consecutive failures of either kind take an upstream out of the
// request path; `healthy_threshold` consecutive successes bring it back. A success on a live
// request counts like a successful probe: in panic mode (every upstream unhealthy, so all are
// tried anyway) the first one that answers earns its way back without waiting for the prober.
//
// Pure state, no I/O, no clock of its own: callers pass the time, so unit tests drive it with a
// fake clock. Every answer goes through one call, record(), which returns the transition it
// caused (if any); the fleet hands transitions to its listener (log, metrics), so neither the
// transport nor the state machine reports anything itself. Thread-safe; healthy() is one relaxed
// atomic load for the request path.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>

#include "gateway/net/https_client.hpp"

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

  enum class Source { request, probe };

  // True when an answer says the upstream is unwell: no answer, a broken one, or a 5xx. A 404 or
  // another 4xx is a live server; our own limits (busy) and withdrawals say nothing about it.
  static bool counts_against(const UpstreamResponse& r);

  bool healthy() const noexcept { return healthy_.load(std::memory_order_relaxed); }
  // Set from the configuration (each reload); the defaults until then.
  void set_thresholds(Thresholds t);

  // One answer, from a live request or a probe. Returns the state change it caused, so the
  // caller reports each transition once.
  Change record(const UpstreamResponse& r, Source source, TimePoint now);
  View view() const;

  // Probe scheduling. `jitter` in [-1, 1] spreads probes of many gateways (and upstreams) over
  // +-20% of the interval so they do not arrive in lockstep.
  bool claim_probe(TimePoint now, std::chrono::milliseconds interval, double jitter);
  void make_probe_due();

 private:
  Change failure(TimePoint now, std::string_view why, bool probe);
  Change success(TimePoint now, bool probe);

  mutable std::mutex mutex_;
  std::atomic<bool> healthy_{true};
  Thresholds thresholds_;
  View v_;
  TimePoint next_probe_{};  // the epoch: probe at once after start
};

}  // namespace hkpgw::gateway
