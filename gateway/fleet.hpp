// The upstream fleet: which upstreams a miss asks and how (ARCHITECTURE.md, "Life of a lookup", step 5), their
// health (active probes plus passive failure counting), and the configuration snapshot requests
// run under.
//
//  - Order: the default first, then list order, skipping unhealthy upstreams; when every one is
//    unhealthy all are tried in order anyway (panic mode: never "no upstream" while one might
//    answer). Entering and leaving panic mode is logged once each.
//  - Failover: a 404 or an unusable answer moves on to the next upstream; so does a failure,
//    which also counts against that upstream's health.
//  - Hedging: with hedge_after > 0, an upstream that has not answered after that long gets
//    company from the next one; the first good answer wins and the others are cancelled.
//  - merge = "all": every candidate is asked at once and every answer is judged.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <vector>

#include "config/config.hpp"
#include "gateway/upstream_client.hpp"

namespace hkpgw::gateway {

// Everything a request needs from the configuration, fixed for its whole life: a reload builds a
// new Snapshot and swaps it in; requests in flight keep theirs. Upstream clients whose settings
// did not change are carried over into the new snapshot, with their connections and health.
struct Snapshot {
  std::shared_ptr<const config::Config> config;
  std::vector<std::shared_ptr<UpstreamClient>> upstreams;  // in try order: default first
  std::string admin_token;  // from admin.token_file, read with the config; "" = admin API off
};
using SnapshotSource = std::function<std::shared_ptr<const Snapshot>()>;

// Builds the snapshot for `cfg`, reusing clients of `previous` whose connection settings match,
// and reads the admin token. Throws std::runtime_error when a CA file cannot be loaded or the
// token file holds no token of at least 16 characters.
std::shared_ptr<const Snapshot> build_snapshot(boost::asio::any_io_executor executor,
                                               std::shared_ptr<const config::Config> cfg,
                                               const Snapshot* previous);

// How one fan-out should treat an answer.
enum class Verdict {
  done,    // a winner: stop, cancel the rest
  go_on,   // not good enough: ask the next upstream (or keep waiting for the others)
};
// Called once per answer, in the order answers arrive, on the fan-out's executor; the next answer
// waits until it returns (so a judge may hand heavy work to the WorkPool and await it).
using Judge =
    std::function<boost::asio::awaitable<Verdict>(UpstreamClient&, UpstreamResponse&)>;

class Metrics;

class Fleet {
 public:
  explicit Fleet(Metrics* metrics = nullptr) : metrics_(metrics) {}

  // The upstreams a request asks, in order. Healthy ones; all of them in panic mode.
  std::vector<std::shared_ptr<UpstreamClient>> candidates(const Snapshot& snap);
  // Panic mode: there are upstreams and none is healthy.
  static bool none_healthy(const Snapshot& snap);

  // Asks `candidates` for `path_and_query` per the snapshot's policy (sequential with optional
  // hedging, or everyone at once when `all`), feeding each answer to `judge` after recording it
  // against the upstream's health. Returns when the judge says done or every candidate answered.
  // With a `form_body` the request is a POST of that body (key submission), never hedged.
  boost::asio::awaitable<void> fan_out(const Snapshot& snap,
                                       std::vector<std::shared_ptr<UpstreamClient>> candidates,
                                       std::string path_and_query, UpstreamLimits limits, bool all,
                                       Judge judge, std::optional<std::string> form_body = {});

  // Health bookkeeping for one answer (live or probe), logging each state change once.
  static void note(UpstreamClient& client, const UpstreamResponse& r,
                   const config::UpstreamsConfig& cfg, bool probe);

  // Active health probes: every probe_interval (+-20% jitter) each upstream's probe path is
  // fetched with probe_timeout; any answer below 500 counts as alive. Runs until stop().
  void start_probing(boost::asio::any_io_executor executor, SnapshotSource snapshots);
  void stop_probing() { probing_ = false; }
  // Makes every upstream due for a probe at the next tick (the admin API's "probe now").
  void probe_soon() { probe_soon_ = true; }

 private:
  Metrics* metrics_;
  std::atomic<bool> panic_{false};
  std::atomic<bool> probing_{false};
  std::atomic<bool> probe_soon_{false};
};

}  // namespace hkpgw::gateway
