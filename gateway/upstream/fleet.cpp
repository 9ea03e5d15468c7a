#include "gateway/upstream/fleet.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/concurrent_channel.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <algorithm>
#include <random>

#include "gateway/observe/log.hpp"
#include "gateway/observe/metrics.hpp"

namespace hkpgw::gateway {

namespace asio = boost::asio;
constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);
constexpr auto kProbeTick = std::chrono::milliseconds(100);

namespace {

// One event of a fan-out: an answer from candidate `index`, or (index < 0) the hedge timer of
// generation `generation` firing.
struct Event {
  int index = -1;
  unsigned generation = 0;
  UpstreamAnswer response;
};
using Channel = asio::experimental::concurrent_channel<void(boost::system::error_code, Event)>;

asio::awaitable<void> ask_one(std::shared_ptr<Upstream> upstream, UpstreamQuery query,
                              UpstreamLimits limits, std::shared_ptr<CancelToken> token,
                              std::shared_ptr<Channel> events, int index) {
  // (No co_await inside a braced initialiser: GCC 12 miscompiles that.)
  UpstreamAnswer r = co_await upstream->ask(query, limits, std::move(token));
  Event e;
  e.index = index;
  e.response = std::move(r);
  events->try_send(boost::system::error_code{}, std::move(e));  // room for every candidate
}

}  // namespace

void log_health_event(const HealthEvent& e) {
  const char* last = e.source == HealthState::Source::probe ? "probe" : "request";
  if (e.change == HealthState::Change::went_down) {
    log::warn("upstream_health",
              {{"upstream", e.upstream.name()},
               {"state", "unhealthy"},
               {"after", std::to_string(e.config.unhealthy_threshold) + " consecutive failures"},
               {"last", last},
               {"detail", e.answer.detail}});
  } else if (e.change == HealthState::Change::came_back) {
    log::info("upstream_health",
              {{"upstream", e.upstream.name()},
               {"state", "healthy"},
               {"after", std::to_string(e.config.healthy_threshold) + " consecutive successes"},
               {"last", last}});
  }
}

bool Fleet::panic_trial_begin(std::chrono::steady_clock::time_point now,
                              std::chrono::seconds& retry_in) {
  const std::int64_t until = open_until_;
  const std::int64_t at = now.time_since_epoch().count();
  if (at < until) {
    retry_in = std::chrono::ceil<std::chrono::seconds>(
        std::chrono::steady_clock::duration(until - at));
    return false;
  }
  if (trial_running_.exchange(true)) {  // another miss is the trial: wait for its verdict
    retry_in = std::chrono::seconds(1);
    return false;
  }
  return true;
}

void Fleet::panic_trial_done(bool answered, std::chrono::steady_clock::time_point now) {
  open_until_ = answered ? 0
                         : (now + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                                      kPanicOpenFor))
                               .time_since_epoch()
                               .count();
  trial_running_ = false;
}

bool Fleet::none_healthy(const Snapshot& snap) {
  bool any = false;
  for (const auto& u : snap.upstreams) {
    if (!u->keyserver()) continue;
    if (u->health().healthy()) return false;
    any = true;
  }
  return any;
}

std::vector<std::shared_ptr<Upstream>> Fleet::candidates(const Snapshot& snap,
                                                         const UpstreamQuery& query) {
  const bool panic = none_healthy(snap);
  std::vector<std::shared_ptr<Upstream>> out;
  for (const auto& u : snap.upstreams) {
    if (!u->answers(query)) continue;
    if (panic || !u->keyserver() || u->health().healthy()) out.push_back(u);
  }
  std::stable_partition(out.begin(), out.end(),
                        [&query](const auto& u) { return u->asked_first(query); });
  if (panic != panic_.exchange(panic)) {
    if (panic) {
      log::warn("upstream_panic", {{"state", "entered"},
                                   {"effect", "every upstream is unhealthy: trying all in order"}});
    } else {
      log::info("upstream_panic", {{"state", "left"}});
    }
  }
  return out;
}

void Fleet::record(Upstream& upstream, const UpstreamResponse& r,
                   const config::UpstreamsConfig& cfg, HealthState::Source source) {
  const auto change = upstream.health().record(r, source, std::chrono::steady_clock::now());
  // An upstream that answers (a probe included) closes the panic circuit: the next miss asks.
  if (r.outcome == Outcome::ok || r.outcome == Outcome::not_found) open_until_ = 0;
  if (change != HealthState::Change::none && on_change_) {
    on_change_(HealthEvent{upstream, change, source, r, cfg});
  }
}

asio::awaitable<void> Fleet::probe_one(std::shared_ptr<Upstream> upstream,
                                       std::shared_ptr<const config::Config> cfg) {
  const auto& u = cfg->upstreams;
  const UpstreamLimits limits{std::min(u.connect_timeout, u.probe_timeout), u.probe_timeout,
                              64 << 10};
  const UpstreamAnswer r = co_await upstream->probe(limits);
  record(*upstream, r, u, HealthState::Source::probe);
}

asio::awaitable<void> Fleet::fan_out(const Snapshot& snap,
                                     std::vector<std::shared_ptr<Upstream>> candidates,
                                     UpstreamQuery query, UpstreamLimits limits, bool all,
                                     Judge judge) {
  const std::size_t n = candidates.size();
  if (n == 0) co_return;
  const auto& cfg = snap.config->upstreams;
  const auto ex = co_await asio::this_coro::executor;
  auto events = std::make_shared<Channel>(ex, n + 2);
  std::vector<std::shared_ptr<CancelToken>> tokens(n);
  std::vector<bool> answered(n, false);
  std::size_t next = 0, in_flight = 0;
  unsigned generation = 0;
  asio::steady_timer hedge(ex);

  auto launch = [&] {
    const std::size_t i = next++;
    tokens[i] = std::make_shared<CancelToken>();
    ++in_flight;
    asio::co_spawn(ex,
                   ask_one(candidates[i], query, limits, tokens[i], events, static_cast<int>(i)),
                   asio::detached);
  };
  // The hedge timer starts with each sequential launch; only the latest one counts.
  auto arm_hedge = [&] {
    ++generation;
    if (all || query.what == UpstreamQuery::What::submit || cfg.hedge_after.count() <= 0 || next >= n) return;
    hedge.expires_after(cfg.hedge_after);
    hedge.async_wait([events, g = generation](boost::system::error_code ec) {
      if (!ec) events->try_send(boost::system::error_code{}, Event{-1, g, {}});
    });
  };

  launch();
  while (all && next < n) launch();
  arm_hedge();
  while (in_flight > 0) {
    std::tuple<boost::system::error_code, Event> got = co_await events->async_receive(kTuple);
    if (std::get<0>(got)) break;
    Event& e = std::get<1>(got);
    if (e.index < 0) {
      if (e.generation == generation && next < n) {
        log::info("upstream_hedge", {{"slow", candidates[next - 1]->name()},
                                     {"also_asking", candidates[next]->name()},
                                     {"after_ms", std::to_string(cfg.hedge_after.count())}});
        launch();
        arm_hedge();
      }
      continue;
    }
    --in_flight;
    answered[e.index] = true;
    Upstream& upstream = *candidates[e.index];
    record(upstream, e.response, cfg, HealthState::Source::request);
    metrics_.upstream(upstream.name(), outcome_name(e.response.outcome),
                      static_cast<double>(e.response.elapsed.count()) / 1e6);
    const Verdict verdict = co_await judge(upstream, e.response);
    if (verdict == Verdict::done) break;
    if (!all && in_flight == 0 && next < n) {
      launch();
      arm_hedge();
    }
  }
  hedge.cancel();
  for (std::size_t i = 0; i < next; ++i) {
    if (!answered[i]) tokens[i]->cancel();  // the losers of a hedge
  }
}

void Fleet::start_probing(asio::any_io_executor executor, SnapshotSource snapshots) {
  probing_ = true;
  auto strand = asio::make_strand(executor);
  asio::co_spawn(
      strand,
      [this, executor, strand, snapshots = std::move(snapshots)]() -> asio::awaitable<void> {
        std::minstd_rand rng(std::random_device{}());
        std::uniform_real_distribution<double> jitter(-1.0, 1.0);
        asio::steady_timer tick(strand);
        while (probing_) {
          const auto snap = snapshots();
          const bool force = probe_soon_.exchange(false);
          const auto now = std::chrono::steady_clock::now();
          for (const auto& u : snap->upstreams) {
            if (force) u->health().make_probe_due();
            if (u->health().claim_probe(now, snap->config->upstreams.probe_interval, jitter(rng))) {
              asio::co_spawn(asio::make_strand(executor), probe_one(u, snap->config),
                             asio::detached);
            }
          }
          tick.expires_after(kProbeTick);
          co_await tick.async_wait(kTuple);
        }
      },
      asio::detached);
}

}  // namespace hkpgw::gateway
