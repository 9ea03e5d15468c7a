#include "gateway/health.hpp"

#include <algorithm>

namespace hkpgw::gateway {

HealthState::Change HealthState::failure(TimePoint now, Thresholds t, std::string_view why,
                                         bool probe) {
  std::lock_guard lock(mutex_);
  v_.last_error = std::string(why.substr(0, 300));
  v_.consecutive_successes = 0;
  ++v_.consecutive_failures;
  if (probe) {
    ++v_.probes;
    ++v_.probe_failures;
  }
  if (v_.healthy && v_.consecutive_failures >= std::max(1u, t.unhealthy)) {
    v_.healthy = false;
    v_.since = now;
    healthy_.store(false, std::memory_order_relaxed);
    return Change::went_down;
  }
  return Change::none;
}

HealthState::Change HealthState::success(TimePoint now, Thresholds t, bool probe) {
  std::lock_guard lock(mutex_);
  v_.consecutive_failures = 0;
  ++v_.consecutive_successes;
  if (probe) ++v_.probes;
  if (!v_.healthy && v_.consecutive_successes >= std::max(1u, t.healthy)) {
    v_.healthy = true;
    v_.since = now;
    v_.last_error.clear();
    healthy_.store(true, std::memory_order_relaxed);
    return Change::came_back;
  }
  return Change::none;
}

HealthState::View HealthState::view() const {
  std::lock_guard lock(mutex_);
  return v_;
}

bool HealthState::claim_probe(TimePoint now, std::chrono::milliseconds interval, double jitter) {
  std::lock_guard lock(mutex_);
  if (now < next_probe_) return false;
  jitter = std::clamp(jitter, -1.0, 1.0);
  const auto spread = std::chrono::milliseconds(
      static_cast<std::int64_t>(static_cast<double>(interval.count()) * 0.2 * jitter));
  next_probe_ = now + interval + spread;
  return true;
}

void HealthState::make_probe_due() {
  std::lock_guard lock(mutex_);
  next_probe_ = TimePoint{};
}

}  // namespace hkpgw::gateway
