#include "gateway/observe/metrics.hpp"

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>
#include <vector>

#include "gateway/observe/clock.hpp"

namespace hkpgw::gateway {

namespace pm = prometheus;

namespace {
std::atomic<std::uint64_t> next_serial{1};
}  // namespace

struct Metrics::Impl {
  // Which Metrics a thread's remembered series belong to (an address could be reused).
  const std::uint64_t serial = next_serial++;
  pm::Registry registry;
  pm::Family<pm::Counter>& requests = pm::BuildCounter()
                                          .Name("hkp_gateway_requests_total")
                                          .Help("Requests answered, by front (hkp, vks), op and status")
                                          .Register(registry);
  pm::Family<pm::Histogram>& request_duration =
      pm::BuildHistogram()
          .Name("hkp_gateway_request_duration_seconds")
          .Help("Time from a complete request to its answer, by op")
          .Register(registry);
  pm::Counter& answers_reused = pm::BuildCounter()
                                    .Name("hkp_gateway_answers_reused_total")
                                    .Help("Cached-key hits sent again as prepared, without the handler")
                                    .Register(registry)
                                    .Add({});
  pm::Family<pm::Counter>& cache_lookups = pm::BuildCounter()
                                               .Name("hkp_gateway_cache_lookups_total")
                                               .Help("Lookups by what the cache could do")
                                               .Register(registry);
  pm::Family<pm::Gauge>& cache_keys =
      pm::BuildGauge().Name("hkp_gateway_cache_keys").Help("Keys in the cache").Register(registry);
  pm::Family<pm::Gauge>& cache_bytes = pm::BuildGauge()
                                           .Name("hkp_gateway_cache_bytes")
                                           .Help("Bytes of LMDB pages in use")
                                           .Register(registry);
  pm::Family<pm::Counter>& cache_evicted = pm::BuildCounter()
                                               .Name("hkp_gateway_cache_evicted_total")
                                               .Help("Keys evicted to stay within max_size")
                                               .Register(registry);
  pm::Family<pm::Gauge>& cache_max_bytes = pm::BuildGauge()
                                               .Name("hkp_gateway_cache_max_bytes")
                                               .Help("cache.max_size: cache_bytes is kept under it")
                                               .Register(registry);
  pm::Family<pm::Counter>& cache_write_failures =
      pm::BuildCounter()
          .Name("hkp_gateway_cache_write_failures_total")
          .Help(
              "Cache writes that failed after an eviction round and a retry (answers served "
              "uncached)")
          .Register(registry);
  pm::Family<pm::Counter>& upstream_requests =
      pm::BuildCounter()
          .Name("hkp_gateway_upstream_requests_total")
          .Help("Live requests to upstream keyservers, by outcome")
          .Register(registry);
  pm::Family<pm::Histogram>& upstream_duration =
      pm::BuildHistogram()
          .Name("hkp_gateway_upstream_request_duration_seconds")
          .Help("Upstream request time, by upstream")
          .Register(registry);
  pm::Family<pm::Counter>& upstream_health_changes =
      pm::BuildCounter()
          .Name("hkp_gateway_upstream_health_changes_total")
          .Help("Upstreams taken out of rotation (unhealthy) and brought back (healthy)")
          .Register(registry);
  pm::Family<pm::Gauge>& upstream_healthy = pm::BuildGauge()
                                                .Name("hkp_gateway_upstream_healthy")
                                                .Help("1 while an upstream is in rotation")
                                                .Register(registry);
  pm::Family<pm::Counter>& key_mismatch =
      pm::BuildCounter()
          .Name("hkp_gateway_upstream_key_mismatch_total")
          .Help("Upstream answers holding no key that matches the query")
          .Register(registry);
  pm::Family<pm::Gauge>& refresh_oldest =
      pm::BuildGauge()
          .Name("hkp_gateway_refresh_oldest_seconds")
          .Help("Age of the oldest cached copy that should have been refreshed ([refresh] every)")
          .Register(registry);
  pm::Family<pm::Gauge>& refresh_period =
      pm::BuildGauge()
          .Name("hkp_gateway_refresh_period_seconds")
          .Help("[refresh] every: each cached key is refreshed at least this often (0: off)")
          .Register(registry);
  pm::Family<pm::Counter>& keys_rejected =
      pm::BuildCounter()
          .Name("hkp_gateway_keys_rejected_total")
          .Help("Keys refused, and parts of keys dropped by cleaning, by reason")
          .Register(registry);
  pm::Family<pm::Gauge>& forward_queue = pm::BuildGauge()
                                             .Name("hkp_gateway_forward_queue")
                                             .Help("Submitted keys waiting to be forwarded")
                                             .Register(registry);
  pm::Family<pm::Counter>& reloads = pm::BuildCounter()
                                         .Name("hkp_gateway_config_reloads_total")
                                         .Help("Config reloads, by result")
                                         .Register(registry);
  pm::Family<pm::Gauge>& last_reload =
      pm::BuildGauge()
          .Name("hkp_gateway_config_last_reload_success_timestamp_seconds")
          .Help("When the config was last loaded successfully (start included)")
          .Register(registry);
  pm::Family<pm::Gauge>& build_info =
      pm::BuildGauge().Name("hkp_gateway_build_info").Help("Always 1").Register(registry);

  std::mutex scrape_mutex;  // render() is not reentrant (the catch-up counters below)
  std::uint64_t evicted_seen = 0;
  std::uint64_t write_failures_seen = 0;

  // A counter kept by someone else as a running total (the store's), brought up to `total` at
  // scrape time; present at zero before the first event.
  static void catch_up(pm::Family<pm::Counter>& family, std::uint64_t total, std::uint64_t& seen) {
    auto& counter = family.Add({});
    if (total > seen) {
      counter.Increment(static_cast<double>(total - seen));
      seen = total;
    }
  }

  static const pm::Histogram::BucketBoundaries& latency_buckets() {
    static const pm::Histogram::BucketBoundaries b = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                                      0.05,   0.1,   0.25,   0.5,   1,    2.5,
                                                      5,      10};
    return b;
  }
};

Metrics::Metrics(std::string_view version) : impl_(std::make_unique<Impl>()) {
  impl_->build_info.Add({{"version", std::string(version)}}).Set(1);
  const auto now = unix_now();
  impl_->last_reload.Add({}).Set(static_cast<double>(now));
  for (const char* r : {"hit", "stale", "miss", "revalidated", "negative"}) {
    impl_->cache_lookups.Add({{"result", r}});  // present at zero from the start
  }
  for (const char* r : {"success", "failure"}) impl_->reloads.Add({{"result", r}});
}

Metrics::Metrics() = default;
Metrics::~Metrics() = default;

Metrics& Metrics::none() {
  static Metrics disabled;
  return disabled;
}

// The series one request touches, remembered per thread: Family::Add builds a label map, hashes
// it and takes the family's mutex, a tenth of a cached answer's instructions. Bounded: ops,
// statuses and cache results are small fixed sets.
void Metrics::request(std::string_view front, std::string_view op, unsigned status,
                      std::string_view cache, double seconds, bool reused) {
  if (!impl_) return;
  if (reused) impl_->answers_reused.Increment();
  struct Series {
    std::uint64_t owner;
    std::string_view front;  // static text (front_of)
    std::string op;
    unsigned status;
    pm::Counter* count;
    pm::Histogram* duration;
  };
  struct Lookups {
    std::uint64_t owner;
    std::string result;
    pm::Counter* count;
  };
  thread_local std::vector<Series> series;
  thread_local std::vector<Lookups> lookups;
  if (!series.empty() && series.front().owner != impl_->serial) series.clear();  // a new Metrics
  if (!lookups.empty() && lookups.front().owner != impl_->serial) lookups.clear();
  const std::string_view o = op.empty() || op == "-" ? std::string_view("other") : op;
  auto it = std::find_if(series.begin(), series.end(), [&](const Series& x) {
    return x.owner == impl_->serial && x.status == status && x.op == o && x.front == front;
  });
  if (it == series.end()) {
    const std::string name(o);
    series.push_back({impl_->serial, front, name, status,
                      &impl_->requests.Add({{"front", std::string(front)},
                                            {"op", name},
                                            {"status", std::to_string(status)}}),
                      &impl_->request_duration.Add({{"op", name}}, Impl::latency_buckets())});
    it = std::prev(series.end());
  }
  it->count->Increment();
  it->duration->Observe(seconds);
  if (cache.empty() || cache == "-") return;
  auto lt = std::find_if(lookups.begin(), lookups.end(), [&](const Lookups& x) {
    return x.owner == impl_->serial && x.result == cache;
  });
  if (lt == lookups.end()) {
    const std::string name(cache);
    lookups.push_back({impl_->serial, name, &impl_->cache_lookups.Add({{"result", name}})});
    lt = std::prev(lookups.end());
  }
  lt->count->Increment();
}

void Metrics::upstream(const std::string& upstream, std::string_view outcome, double seconds) {
  if (!impl_) return;
  impl_->upstream_requests.Add({{"upstream", upstream}, {"outcome", std::string(outcome)}})
      .Increment();
  impl_->upstream_duration.Add({{"upstream", upstream}}, Impl::latency_buckets()).Observe(seconds);
}

void Metrics::key_mismatch(const std::string& upstream) {
  if (!impl_) return;
  impl_->key_mismatch.Add({{"upstream", upstream}}).Increment();
}

namespace {

std::map<std::string, std::string> label_map(const std::vector<std::string>& names,
                                             std::initializer_list<std::string_view> values) {
  std::map<std::string, std::string> out;
  auto v = values.begin();
  for (const auto& n : names) out.emplace(n, v == values.end() ? std::string() : std::string(*v++));
  return out;
}

}  // namespace

void CounterFamily::add(std::initializer_list<std::string_view> labels, double by) const {
  if (!family_) return;
  static_cast<pm::Family<pm::Counter>*>(family_)->Add(label_map(names_, labels)).Increment(by);
}

void GaugeFamily::set(double value, std::initializer_list<std::string_view> labels) const {
  if (!family_) return;
  static_cast<pm::Family<pm::Gauge>*>(family_)->Add(label_map(names_, labels)).Set(value);
}

CounterFamily Metrics::counter(std::string_view name, std::string_view help,
                               std::vector<std::string> label_names,
                               const std::vector<std::vector<std::string>>& present) {
  CounterFamily f;
  if (!impl_) return f;
  auto& family = pm::BuildCounter()
                     .Name("hkp_gateway_" + std::string(name))
                     .Help(std::string(help))
                     .Register(impl_->registry);
  for (const auto& values : present) {
    std::map<std::string, std::string> labels;
    for (std::size_t i = 0; i < label_names.size() && i < values.size(); ++i) {
      labels.emplace(label_names[i], values[i]);
    }
    family.Add(labels);
  }
  f.family_ = &family;
  f.names_ = std::move(label_names);
  return f;
}

GaugeFamily Metrics::gauge(std::string_view name, std::string_view help,
                           std::vector<std::string> label_names) {
  GaugeFamily f;
  if (!impl_) return f;
  f.family_ = &pm::BuildGauge()
                   .Name("hkp_gateway_" + std::string(name))
                   .Help(std::string(help))
                   .Register(impl_->registry);
  f.names_ = std::move(label_names);
  return f;
}

void Metrics::keys_rejected(std::string_view reason, std::uint64_t n) {
  if (!impl_) return;
  impl_->keys_rejected.Add({{"reason", std::string(reason)}}).Increment(static_cast<double>(n));
}

void Metrics::config_reload(bool ok, std::int64_t unix_time) {
  if (!impl_) return;
  impl_->reloads.Add({{"result", ok ? "success" : "failure"}}).Increment();
  if (ok) impl_->last_reload.Add({}).Set(static_cast<double>(unix_time));
}

void Metrics::health_change(const std::string& upstream, bool healthy) {
  if (!impl_) return;
  impl_->upstream_health_changes.Add({{"upstream", upstream}, {"state", healthy ? "healthy" : "unhealthy"}})
      .Increment();
}

std::string Metrics::render(const MetricsSample& s) {
  if (!impl_) return {};
  std::lock_guard lock(impl_->scrape_mutex);
  impl_->cache_keys.Add({}).Set(static_cast<double>(s.cache_keys));
  impl_->cache_bytes.Add({}).Set(static_cast<double>(s.cache_bytes));
  impl_->forward_queue.Add({}).Set(static_cast<double>(s.forward_queue));
  impl_->refresh_oldest.Add({}).Set(s.refresh_oldest_seconds);
  impl_->refresh_period.Add({}).Set(s.refresh_period_seconds);
  Impl::catch_up(impl_->cache_evicted, s.cache_evicted, impl_->evicted_seen);
  Impl::catch_up(impl_->cache_write_failures, s.cache_write_failures, impl_->write_failures_seen);
  impl_->cache_max_bytes.Add({}).Set(static_cast<double>(s.cache_max_bytes));
  for (const auto& [name, healthy] : s.upstream_healthy) {
    impl_->upstream_healthy.Add({{"upstream", name}}).Set(healthy ? 1 : 0);
    for (const auto outcome : s.upstream_outcomes) {
      impl_->upstream_requests.Add({{"upstream", name}, {"outcome", std::string(outcome)}});
    }
    for (const char* state : {"healthy", "unhealthy"}) {
      impl_->upstream_health_changes.Add({{"upstream", name}, {"state", state}});
    }
  }
  return pm::TextSerializer().Serialize(impl_->registry.Collect()) + process_metrics();
}

namespace {

// /proc/self/stat's fields after the command name (field 3 on); empty when unreadable.
std::vector<std::string> own_stat() {
  std::ifstream in("/proc/self/stat");
  std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const auto close = all.rfind(')');  // the name may hold spaces and parentheses
  std::vector<std::string> out;
  if (close == std::string::npos) return out;
  std::istringstream rest(all.substr(close + 1));
  for (std::string f; rest >> f;) out.push_back(std::move(f));
  return out;
}

double boot_time() {  // seconds since the epoch, from /proc/stat's btime
  std::ifstream in("/proc/stat");
  for (std::string line; std::getline(in, line);) {
    if (line.starts_with("btime ")) return std::strtod(line.c_str() + 6, nullptr);
  }
  return 0;
}

}  // namespace

// The process_* families Prometheus' client libraries export, with their names and meanings,
// read from /proc at scrape time.
std::string process_metrics() {
  const std::vector<std::string> f = own_stat();  // f[0] is field 3 (state)
  if (f.size() < 22) return {};
  const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  const double page = static_cast<double>(sysconf(_SC_PAGESIZE));
  const double cpu = (std::strtod(f[11].c_str(), nullptr) + std::strtod(f[12].c_str(), nullptr)) /
                     ticks;  // utime, stime
  // Fixed for the process's life: read once.
  static const double start = boot_time() + std::strtod(f[19].c_str(), nullptr) / ticks;
  const double vsize = std::strtod(f[20].c_str(), nullptr);
  const double rss = std::strtod(f[21].c_str(), nullptr) * page;
  std::error_code ec;
  double fds = 0;
  for (auto it = std::filesystem::directory_iterator("/proc/self/fd", ec);
       !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
    ++fds;
  }
  rlimit lim{};
  const double max_fds =
      getrlimit(RLIMIT_NOFILE, &lim) == 0 ? static_cast<double>(lim.rlim_cur) : 0;
  std::string out;
  auto family = [&](const char* name, const char* type, const char* help, double value) {
    char num[64];
    std::snprintf(num, sizeof num, "%.10g", value);
    out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n" +
           name + " " + num + "\n";
  };
  family("process_cpu_seconds_total", "counter", "Total user and system CPU time spent in seconds.",
         cpu);
  family("process_open_fds", "gauge", "Number of open file descriptors.", fds);
  family("process_max_fds", "gauge", "Maximum number of open file descriptors.", max_fds);
  family("process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.", vsize);
  family("process_resident_memory_bytes", "gauge", "Resident memory size in bytes.", rss);
  family("process_start_time_seconds", "gauge",
         "Start time of the process since unix epoch in seconds.", start);
  return out;
}

}  // namespace hkpgw::gateway
