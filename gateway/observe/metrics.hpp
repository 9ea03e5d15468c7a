// Prometheus metrics (docs/contract.md, prefix hkp_gateway_). prometheus-cpp stays inside
// metrics.cpp; the rest of the code calls these few methods. Metrics::none() is the null object
// (every method does nothing) for code run without a registry: tests, the cache CLI. Counters are updated as events
// happen; gauges (cache size, upstream health, forward queue) are sampled at scrape time.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "gateway/observe/stats.hpp"

namespace hkpgw::gateway {

struct MetricsSample {  // what /metrics reads at scrape time
  std::uint64_t cache_keys = 0;
  std::uint64_t cache_bytes = 0;
  std::uint64_t cache_evicted = 0;  // since start
  std::uint64_t forward_queue = 0;
  std::uint64_t cache_max_bytes = 0;       // cache.max_size
  std::uint64_t cache_write_failures = 0;  // since start
  // Outcome labels of upstream_requests_total: each upstream's series exist from the first
  // scrape, at zero, so a rate or a ratio over them is never missing.
  std::vector<std::string_view> upstream_outcomes;
  // Age of the oldest cached copy the refresher should have refreshed by now (0: none, or off).
  double refresh_oldest_seconds = 0;
  double refresh_period_seconds = 0;  // [refresh] every (0: the refresher is off)
  std::vector<std::pair<std::string, bool>> upstream_healthy;
};

// process_cpu_seconds_total, process_resident_memory_bytes and the other process_* families of
// Prometheus' client libraries, as exposition text (appended to every /metrics answer).
std::string process_metrics();

class Metrics {
 public:
  explicit Metrics(std::string_view version);
  ~Metrics();
  static Metrics& none();
  Metrics(const Metrics&) = delete;
  Metrics& operator=(const Metrics&) = delete;

  // One answered request: the front it came in by (static text: "hkp", "vks"), op (get,
  // index, vindex, stats, add, or "other"), HTTP status, cache result (hit, stale, miss,
  // revalidated, negative, or "-"), seconds in the gateway.
  // `reused`: a prepared answer sent again without the handler (ReusedAnswers).
  void request(std::string_view front, std::string_view op, unsigned status,
               std::string_view cache, double seconds, bool reused = false);
  // One live upstream request (probes are not counted here).
  void upstream(const std::string& upstream, std::string_view outcome, double seconds);
  void key_mismatch(const std::string& upstream);
  // Keys refused, or parts of keys dropped by cleaning, by reason.
  void keys_rejected(std::string_view reason, std::uint64_t n = 1);
  void config_reload(bool ok, std::int64_t unix_time);
  // A component's own families (stats.hpp), registered as hkp_gateway_<name>. `present`:
  // label value lists whose series exist at zero from the start (so rate() works at once).
  // Asking twice for one name gives the same family.
  CounterFamily counter(std::string_view name, std::string_view help,
                        std::vector<std::string> label_names = {},
                        const std::vector<std::vector<std::string>>& present = {});
  GaugeFamily gauge(std::string_view name, std::string_view help,
                    std::vector<std::string> label_names = {});
  // An upstream left (healthy = false) or rejoined the rotation.
  void health_change(const std::string& upstream, bool healthy);

  // The Prometheus text exposition format.
  std::string render(const MetricsSample& sample);

 private:
  Metrics();  // the null object
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace hkpgw::gateway
