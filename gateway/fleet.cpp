#include "gateway/fleet.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/concurrent_channel.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <algorithm>
#include <fstream>
#include <random>

#include "gateway/log.hpp"
#include "gateway/metrics.hpp"

namespace hkpgw::gateway {

namespace asio = boost::asio;
constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);
constexpr auto kProbeTick = std::chrono::milliseconds(100);

namespace {

bool same_connection_settings(const UpstreamClient& c, const config::UpstreamConfig& u,
                              const config::UpstreamsConfig& all) {
  const auto& o = c.config();
  return o.name == u.name && o.url == u.url && o.ca_file == u.ca_file && o.probe == u.probe &&
         c.shared_ca_file() == all.ca_file && c.max_connections() == all.max_connections;
}

HealthState::Thresholds thresholds(const config::UpstreamsConfig& cfg) {
  return {cfg.unhealthy_threshold, cfg.healthy_threshold};
}

// One event of a fan-out: an answer from candidate `index`, or (index < 0) the hedge timer of
// generation `generation` firing.
struct Event {
  int index = -1;
  unsigned generation = 0;
  UpstreamResponse response;
};
using Channel = asio::experimental::concurrent_channel<void(boost::system::error_code, Event)>;

asio::awaitable<void> ask_one(std::shared_ptr<UpstreamClient> client, std::string target,
                              UpstreamLimits limits, std::shared_ptr<CancelToken> token,
                              std::shared_ptr<Channel> events, int index,
                              std::optional<std::string> form_body) {
  // (No co_await inside a braced initialiser: GCC 12 miscompiles that.)
  UpstreamResponse r;
  if (form_body) {
    r = co_await client->post_form(std::move(target), std::move(*form_body), limits);
  } else {
    r = co_await client->get(std::move(target), limits, std::move(token));
  }
  Event e;
  e.index = index;
  e.response = std::move(r);
  events->try_send(boost::system::error_code{}, std::move(e));  // room for every candidate
}

asio::awaitable<void> probe_one(std::shared_ptr<UpstreamClient> client,
                                std::shared_ptr<const config::Config> cfg) {
  const auto& u = cfg->upstreams;
  const UpstreamLimits limits{std::min(u.connect_timeout, u.probe_timeout), u.probe_timeout,
                              64 << 10};
  const UpstreamResponse r = co_await client->get(client->config().probe, limits);
  Fleet::note(*client, r, u, true);
}

}  // namespace

namespace {

// The admin bearer token: the file's first line without surrounding whitespace.
std::string read_token(const std::string& file) {
  if (file.empty()) return {};
  std::ifstream in(file);
  std::string token;
  std::getline(in, token);
  while (!token.empty() && std::isspace(static_cast<unsigned char>(token.back()))) token.pop_back();
  while (!token.empty() && std::isspace(static_cast<unsigned char>(token.front()))) token.erase(token.begin());
  if (token.size() < 16) {
    throw std::runtime_error("admin.token_file \"" + file +
                             "\" holds no token of at least 16 characters");
  }
  return token;
}

}  // namespace

std::shared_ptr<const Snapshot> build_snapshot(asio::any_io_executor executor,
                                               std::shared_ptr<const config::Config> cfg,
                                               const Snapshot* previous) {
  auto snap = std::make_shared<Snapshot>();
  snap->config = cfg;
  snap->admin_token = read_token(cfg->admin.token_file);
  const auto& ups = cfg->upstreams;
  for (const std::size_t i : ups.try_order()) {
    const auto& u = ups.list[i];
    std::shared_ptr<UpstreamClient> reuse;
    if (previous) {
      for (const auto& c : previous->upstreams) {
        if (same_connection_settings(*c, u, ups)) reuse = c;
      }
    }
    snap->upstreams.push_back(reuse ? reuse
                                    : std::make_shared<UpstreamClient>(executor, u, ups.ca_file,
                                                                       ups.max_connections));
  }
  return snap;
}

bool Fleet::none_healthy(const Snapshot& snap) {
  return !snap.upstreams.empty() &&
         std::none_of(snap.upstreams.begin(), snap.upstreams.end(),
                      [](const auto& u) { return u->health().healthy(); });
}

std::vector<std::shared_ptr<UpstreamClient>> Fleet::candidates(const Snapshot& snap) {
  std::vector<std::shared_ptr<UpstreamClient>> out;
  for (const auto& u : snap.upstreams) {
    if (u->health().healthy()) out.push_back(u);
  }
  const bool panic = out.empty() && !snap.upstreams.empty();
  if (panic != panic_.exchange(panic)) {
    if (panic) {
      log::warn("upstream_panic", {{"state", "entered"},
                                   {"effect", "every upstream is unhealthy: trying all in order"}});
    } else {
      log::info("upstream_panic", {{"state", "left"}});
    }
  }
  return panic ? snap.upstreams : out;
}

void Fleet::note(UpstreamClient& client, const UpstreamResponse& r,
                 const config::UpstreamsConfig& cfg, bool probe) {
  if (r.outcome == Outcome::busy || r.outcome == Outcome::cancelled) return;
  const auto now = std::chrono::steady_clock::now();
  auto& h = client.health();
  if (counts_against_health(r)) {
    const auto change = h.failure(now, thresholds(cfg), r.detail, probe);
    if (change == HealthState::Change::went_down) {
      log::warn("upstream_health",
                {{"upstream", client.name()},
                 {"state", "unhealthy"},
                 {"after", std::to_string(cfg.unhealthy_threshold) + " consecutive failures"},
                 {"last", probe ? "probe" : "request"},
                 {"detail", r.detail}});
    }
    return;
  }
  if (h.success(now, thresholds(cfg), probe) == HealthState::Change::came_back) {
    log::info("upstream_health", {{"upstream", client.name()},
                                  {"state", "healthy"},
                                  {"after", std::to_string(cfg.healthy_threshold) +
                                                " consecutive successes"},
                                  {"last", probe ? "probe" : "request"}});
  }
}

asio::awaitable<void> Fleet::fan_out(const Snapshot& snap,
                                     std::vector<std::shared_ptr<UpstreamClient>> candidates,
                                     std::string target, UpstreamLimits limits, bool all,
                                     Judge judge, std::optional<std::string> form_body) {
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
                   ask_one(candidates[i], target, limits, tokens[i], events, static_cast<int>(i),
                           form_body),
                   asio::detached);
  };
  // The hedge timer starts with each sequential launch; only the latest one counts.
  auto arm_hedge = [&] {
    ++generation;
    if (all || form_body || cfg.hedge_after.count() <= 0 || next >= n) return;
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
    UpstreamClient& client = *candidates[e.index];
    note(client, e.response, cfg, false);
    if (metrics_) {
      metrics_->upstream(client.name(), outcome_name(e.response.outcome),
                         static_cast<double>(e.response.elapsed.count()) / 1e6);
    }
    const Verdict verdict = co_await judge(client, e.response);
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
