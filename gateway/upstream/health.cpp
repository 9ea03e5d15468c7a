#include "gateway/upstream/health.hpp"

#include <algorithm>

namespace hkpgw::gateway {

bool HealthState::counts_against(const UpstreamResponse& r) {
  switch (r.outcome) {
    case Outcome::timeout:
    case Outcome::connect_error:
    case Outcome::tls_error:
    case Outcome::bad_response: return true;
    case Outcome::http_error: return r.status >= 500 || r.status < 400;
    default: return false;
  }
}

void HealthState::set_thresholds(Thresholds t) {
  std::lock_guard lock(mutex_);
  thresholds_ = t;
}

HealthState::Change HealthState::record(const UpstreamResponse& r, Source source, TimePoint now) {
  if (r.outcome == Outcome::busy || r.outcome == Outcome::cancelled) return Change::none;
  std::lock_guard lock(mutex_);
  const bool probe = source == Source::probe;
  return counts_against(r) ? failure(now, r.detail, probe) : success(now, probe);
}

HealthState::Change HealthState::failure(TimePoint now, std::string_view why, bool probe) {
  v_.last_error = std::string(why.substr(0, 300));
  v_.consecutive_successes = 0;
  ++v_.consecutive_failures;
  if (probe) {
    ++v_.probes;
    ++v_.probe_failures;
  }
  if (v_.healthy && v_.consecutive_failures >= std::max(1u, thresholds_.unhealthy)) {
    v_.healthy = false;
    v_.since = now;
    healthy_.store(false, std::memory_order_relaxed);
    return Change::went_down;
  }
  return Change::none;
}

HealthState::Change HealthState::success(TimePoint now, bool probe) {
  v_.consecutive_failures = 0;
  ++v_.consecutive_successes;
  if (probe) ++v_.probes;
  if (!v_.healthy && v_.consecutive_successes >= std::max(1u, thresholds_.healthy)) {
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
