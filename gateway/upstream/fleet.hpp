// The upstream fleet: which upstreams a miss asks and how (ARCHITECTURE.md, "Life of a lookup",
// step 5), and their health (active probes plus passive failure counting).
//
//  - Order: the default first, then list order, skipping unhealthy upstreams; when every one is
//    unhealthy all are tried in order anyway (panic mode: never "no upstream" while one might
//    answer). Entering and leaving panic mode is logged once each. Only upstreams that answer
//    the question take part (Upstream::answers: a WKD upstream, address lookups only), and
//    those asked first (WKD by default) go before the keyservers. Health and panic mode are
//    the keyservers' (a WKD upstream is never unhealthy: a domain's trouble is not its own).
//  - Failover: a 404 or an unusable answer moves on to the next upstream; so does a failure,
//    which also counts against that upstream's health.
//  - Hedging: with hedge_after > 0, an upstream that has not answered after that long gets
//    company from the next one; the first good answer wins and the others are cancelled.
//  - merge = "all": every candidate is asked at once and every answer is judged.
//  - Health: every answer (live or probe) is recorded once, here; each transition goes to the
//    listener given at construction (the app logs it and counts it).
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <vector>

#include "config/config.hpp"
#include "gateway/observe/metrics.hpp"
#include "gateway/upstream/snapshot.hpp"
#include "gateway/upstream/upstream.hpp"

namespace hkpgw::gateway {

// How one fan-out should treat an answer.
enum class Verdict {
  done,    // a winner: stop, cancel the rest
  go_on,   // not good enough: ask the next upstream (or keep waiting for the others)
};
// Called once per answer, in the order answers arrive, on the fan-out's executor; the next answer
// waits until it returns (so a judge may hand heavy work to the WorkPool and await it).
using Judge = std::function<boost::asio::awaitable<Verdict>(Upstream&, UpstreamAnswer&)>;

// One change of an upstream's health, and the answer that caused it.
struct HealthEvent {
  const Upstream& upstream;
  HealthState::Change change;
  HealthState::Source source;
  const UpstreamResponse& answer;
  const config::UpstreamsConfig& config;  // the thresholds it crossed
};
using HealthListener = std::function<void(const HealthEvent&)>;
// The log line of a transition (what the app's listener writes).
void log_health_event(const HealthEvent& e);

class Fleet {
 public:
  explicit Fleet(Metrics& metrics = Metrics::none(), HealthListener on_change = {})
      : metrics_(metrics), on_change_(std::move(on_change)) {}

  // The upstreams asked `query`, in order: those that answer it, healthy ones (all of them in
  // panic mode), the ones asked first in front.
  std::vector<std::shared_ptr<Upstream>> candidates(const Snapshot& snap,
                                                    const UpstreamQuery& query);
  // Panic mode: there are keyservers and none is healthy.
  static bool none_healthy(const Snapshot& snap);

  // Asks `candidates` the query per the snapshot's policy (sequential with optional hedging, or
  // everyone at once when `all`), feeding each answer to `judge` after recording it against the
  // upstream's health. Returns when the judge says done or every candidate answered. A
  // submission is never hedged.
  boost::asio::awaitable<void> fan_out(const Snapshot& snap,
                                       std::vector<std::shared_ptr<Upstream>> candidates,
                                       UpstreamQuery query, UpstreamLimits limits, bool all,
                                       Judge judge);

  // Records one answer (live or probe) into the upstream's health; a transition goes to the
  // listener.
  void record(Upstream& upstream, const UpstreamResponse& r, const config::UpstreamsConfig& cfg,
              HealthState::Source source);

  // Active health probes: every probe_interval (+-20% jitter) each upstream is probed with
  // probe_timeout. Runs until stop_probing().
  void start_probing(boost::asio::any_io_executor executor, SnapshotSource snapshots);
  void stop_probing() { probing_ = false; }
  // Makes every upstream due for a probe at the next tick (the admin API's "probe now").
  void probe_soon() { probe_soon_ = true; }

  // The panic circuit breaker. In panic mode one miss at a time is the trial that asks the
  // upstreams (for at most panic_timeout); once a trial failed, every other miss for
  // kPanicOpenFor is answered at once, without asking, so a keyring refresh with every upstream
  // down ends in seconds rather than one panic_timeout per key (and gpg's five retries of each
  // 503). Probes keep running, and the first healthy upstream ends panic mode and the circuit.
  static constexpr std::chrono::seconds kPanicOpenFor{5};
  // True: ask (this caller is the trial; it must call panic_trial_done). False: answer at once;
  // `retry_in` says when the next trial may run.
  bool panic_trial_begin(std::chrono::steady_clock::time_point now,
                         std::chrono::seconds& retry_in);
  // `answered`: some upstream answered (keys or "not found"), so the circuit closes.
  void panic_trial_done(bool answered, std::chrono::steady_clock::time_point now);

 private:
  boost::asio::awaitable<void> probe_one(std::shared_ptr<Upstream> upstream,
                                         std::shared_ptr<const config::Config> cfg);

  Metrics& metrics_;
  HealthListener on_change_;
  std::atomic<bool> panic_{false};
  std::atomic<bool> trial_running_{false};
  std::atomic<std::int64_t> open_until_{0};  // steady_clock ticks; 0: closed
  std::atomic<bool> probing_{false};
  std::atomic<bool> probe_soon_{false};
};

}  // namespace hkpgw::gateway
