#include "gateway/service/refresher.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <algorithm>
#include <ctime>
#include <random>

#include "gateway/observe/log.hpp"
#include "hkp/text.hpp"
#include "hkp/v2.hpp"
#include "gateway/service/cache_writer.hpp"
#include "gateway/service/periodic.hpp"
#include "gateway/service/work_pool.hpp"

namespace hkpgw::gateway {

namespace asio = boost::asio;
using Steady = std::chrono::steady_clock;

namespace {

constexpr auto kTick = std::chrono::milliseconds(200);
constexpr std::size_t kSlice = 512;          // slots read per slice
constexpr int kMaxPerStep = 32;              // refreshes one step may start before it yields
constexpr int kMaxInFlight = 4;              // refreshes waiting for upstreams at once
constexpr auto kMaxSweepPause = std::chrono::seconds(30);
constexpr auto kMaxBackoff = std::chrono::seconds(60);
constexpr std::size_t kMaxChangedPrefixes = 200'000;  // all logs together
constexpr std::int64_t kChangedKeptFor = 2 * 86400;   // a prefix is forgotten after two days

// "YYYY-MM-DD" of a unix time, UTC.
std::string utc_date(std::int64_t t) {
  const std::time_t tt = static_cast<std::time_t>(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[16];
  std::strftime(buf, sizeof buf, "%Y-%m-%d", &tm);
  return buf;
}

double seconds_of(config::Duration d) { return std::chrono::duration<double>(d).count(); }

// A key's own share of the jitter, in [0, 1): fingerprints are uniformly distributed, so two
// bytes of one spread keys fetched in the same second over a tenth of the period.
double spread(const cache::Fingerprint& f) {
  const auto b = f.bytes();
  return ((static_cast<unsigned char>(b[18]) << 8) | static_cast<unsigned char>(b[19])) / 65536.0;
}

std::mt19937_64& chance() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  return rng;
}

}  // namespace

const char* refresh_outcome_name(RefreshOutcome o) {
  switch (o) {
    case RefreshOutcome::unchanged: return "unchanged";
    case RefreshOutcome::updated: return "updated";
    case RefreshOutcome::revoked: return "revoked";
    case RefreshOutcome::absent: return "absent";
    case RefreshOutcome::failed: return "failed";
  }
  return "?";
}

void Refresher::start(asio::any_io_executor executor, SnapshotSource snapshots) {
  running_ = true;
  auto step = [this, snapshots = std::move(snapshots)]() -> asio::awaitable<void> {
    auto snap = snapshots();
    co_await this->step(std::move(snap));
  };
  run_periodically(executor, kTick, running_, "refresh_step_failed", std::move(step));
}

// Keys confirmed before this second: one fetched in the very second of the request is fresh.
void Refresher::request_all() {
  force_before_ = d_.now();
  restart_sweep_ = true;
}

double Refresher::oldest_seconds() const {
  const std::int64_t oldest = oldest_;
  return oldest == 0 ? 0.0 : static_cast<double>(std::max<std::int64_t>(d_.now() - oldest, 0));
}

bool Refresher::due(const cache::Store::KeyTimes& k, const config::RefreshConfig& cfg,
                    std::int64_t now) const {
  if (k.fetched_at < force_before_) return true;
  const double period = seconds_of(cfg.every) * (1.0 - 0.1 * spread(k.fingerprint));
  return static_cast<double>(now - k.fetched_at) >= period;
}

asio::awaitable<std::optional<cache::Store::KeyTimes>> Refresher::next_due(
    const config::RefreshConfig& cfg) {
  const std::int64_t now = d_.now();
  while (true) {
    for (; at_ < slice_.size(); ++at_) {
      const auto& k = slice_[at_];
      const bool is_due = due(k, cfg, now);
      // The oldest copy after this sweep: a due key's refresh reports back if it failed.
      if (phase_ == Phase::rest && !is_due) {
        sweep_oldest_ = sweep_oldest_ == 0 ? k.fetched_at : std::min(sweep_oldest_, k.fetched_at);
      }
      if (phase_ == Phase::changed) {  // what changed upstream, whatever its age
        if (!changed_upstream(k)) continue;
        co_return slice_[at_++];
      }
      if (!is_due) continue;
      // Then the keys clients were served since their copy was fetched, then the rest.
      if (phase_ == Phase::served && k.accessed_at <= k.fetched_at) continue;
      co_return slice_[at_++];
    }
    // Slots are read on the pool: a slice is a short read transaction, but the loop's strand
    // shares a network thread with cached answers.
    const auto after = cursor_;
    auto read = [this, after] { return d_.store.key_times(after, kSlice); };
    slice_ = co_await d_.pool.run(read);
    at_ = 0;
    if (!slice_.empty()) {
      cursor_ = slice_.back().fingerprint;
      continue;
    }
    cursor_.reset();
    if (phase_ == Phase::changed) {
      phase_ = Phase::served;
      continue;
    }
    if (phase_ == Phase::served) {
      phase_ = Phase::rest;
      sweep_oldest_ = 0;
      continue;
    }
    // The sweep is over: what it saw is the oldest copy now, and the next one starts after a
    // pause (a tenth of the period, at most kMaxSweepPause: cheap, a read of the slots).
    phase_ = Phase::changed;
    oldest_ = sweep_oldest_;
    next_sweep_ = Steady::now() + std::min<Steady::duration>(cfg.every / 10, kMaxSweepPause);
    co_return std::nullopt;
  }
}

asio::awaitable<void> Refresher::step(std::shared_ptr<const Snapshot> snap) {
  const auto& cfg = snap->config->refresh;
  if (!cfg.enabled() || snap->upstreams.empty()) {
    oldest_ = 0;
    co_return;
  }
  if (restart_sweep_.exchange(false)) {  // an operator asked for everything: from the start
    phase_ = Phase::changed;
    cursor_.reset();
    slice_.clear();
    at_ = 0;
    next_sweep_ = {};
  }
  auto clock = Steady::now();
  const bool between_sweeps = phase_ == Phase::changed && !cursor_ && at_ >= slice_.size();
  if (clock < paused_until_) co_return;
  // Between sweeps, the prefix logs are read when due; news in them starts a sweep at once.
  if (between_sweeps && clock >= next_prefix_log_ && !Fleet::none_healthy(*snap)) {
    next_prefix_log_ = clock + std::clamp<Steady::duration>(cfg.every / 60, std::chrono::seconds(10),
                                                            std::chrono::minutes(5));
    const std::size_t news = co_await read_prefix_logs(*snap);
    if (news > 0) next_sweep_ = {};
  }
  if (between_sweeps && clock < next_sweep_) co_return;
  if (Fleet::none_healthy(*snap)) {  // health first: no refresh while nothing answers
    if (!pause_logged_) {
      log::warn("refresh_paused", {{"reason", "no upstream is healthy"}});
      pause_logged_ = true;
    }
    co_return;
  }
  if (pause_logged_) {
    log::info("refresh_resumed", {});
    pause_logged_ = false;
  }
  if (between_sweeps && changed_.empty()) phase_ = Phase::served;  // nothing to look for
  // Twice the pace that covers the cache once per period, at least one a second, at most
  // max_rate; at max_rate while an operator asked for everything.
  const double keys = static_cast<double>(std::max<std::uint64_t>(d_.store.stats().keys, 1));
  double rate = std::max(1.0, 2.0 * keys / seconds_of(cfg.every));
  if (force_before_ > 0) rate = cfg.max_rate;
  rate = std::min(rate, cfg.max_rate);
  std::uniform_real_distribution<double> jitter(0.5, 1.5);
  const asio::any_io_executor strand = co_await asio::this_coro::executor;
  asio::steady_timer wait(strand);
  for (int started = 0; started < kMaxPerStep && running_; ++started) {
    if (in_flight_ >= kMaxInFlight || Steady::now() < paused_until_) co_return;
    clock = Steady::now();
    if (clock < next_refresh_) {
      if (next_refresh_ - clock > kTick) co_return;  // the next step's
      wait.expires_at(next_refresh_);
      co_await wait.async_wait(asio::as_tuple(asio::use_awaitable));
    }
    auto next = co_await next_due(cfg);
    if (!next) {
      if (force_before_ > 0 && force_before_ <= oldest_) force_before_ = 0;  // all done
      co_return;
    }
    const auto gap = std::chrono::duration<double>(jitter(chance()) / rate);
    next_refresh_ = Steady::now() + std::chrono::duration_cast<Steady::duration>(gap);
    ++in_flight_;
    asio::co_spawn(
        strand,
        [this, key = *next, snap]() -> asio::awaitable<void> {
          RefreshOutcome outcome = RefreshOutcome::failed;
          std::chrono::seconds retry_after{0};
          try {
            auto done = co_await refresh_one(key.fingerprint, snap, &retry_after);
            outcome = done.value_or(RefreshOutcome::absent);  // gone meanwhile: nothing to retry
          } catch (const std::exception& e) {
            log::error("refresh_failed", {{"fingerprint", key.fingerprint.hex()}, {"error", e.what()}});
          }
          finished(key, outcome, retry_after, snap->config->refresh);
        },
        asio::detached);
  }
}

void Refresher::finished(const cache::Store::KeyTimes& key, RefreshOutcome outcome,
                         std::chrono::seconds retry_after, const config::RefreshConfig& cfg) {
  --in_flight_;
  if (outcome != RefreshOutcome::failed) {
    failures_ = 0;
    return;
  }
  // Still as old as it was: the sweep's oldest copy may be this one.
  sweep_oldest_ = sweep_oldest_ == 0 ? key.fetched_at : std::min(sweep_oldest_, key.fetched_at);
  // Back off: the upstream's Retry-After if it sent one (at most the period), else 1, 2, 4 s
  // ... up to a minute. The key stays due and is asked again in the next sweep.
  ++failures_;
  Steady::duration backoff =
      std::min<Steady::duration>(std::chrono::seconds(1LL << std::min(failures_ - 1, 6u)), kMaxBackoff);
  if (retry_after.count() > 0) {
    backoff = std::min<Steady::duration>(retry_after, cfg.every);
    log::info("refresh_paused", {{"reason", "an upstream sent Retry-After"},
                                 {"seconds", std::to_string(std::chrono::duration_cast<std::chrono::seconds>(backoff).count())}});
  }
  paused_until_ = std::max(paused_until_, Steady::now() + backoff);
}

// On the loop's strand, once per slot in the first phase of a sweep: no allocation.
bool Refresher::changed_upstream(const cache::Store::KeyTimes& k) const {
  char hex[2 * cache::Fingerprint::kMaxBytes];
  const auto bytes = k.fingerprint.bytes();
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    hex[2 * i] = hkp::kHexLower[static_cast<unsigned char>(bytes[i]) >> 4];
    hex[2 * i + 1] = hkp::kHexLower[static_cast<unsigned char>(bytes[i]) & 15];
  }
  for (const std::size_t n : prefix_lengths_) {
    if (n > 2 * bytes.size()) continue;  // a v6 (64-digit) prefix matches no v4 key
    const auto it = changed_.find(std::string_view(hex, n));
    if (it != changed_.end() && k.fetched_at < it->second) return true;
  }
  return false;
}

asio::awaitable<std::size_t> Refresher::read_prefix_logs(const Snapshot& snap) {
  const std::int64_t now = d_.now();
  std::size_t news = 0;
  std::erase_if(changed_, [&](const auto& e) { return e.second < now - kChangedKeptFor; });
  const auto& u = snap.config->upstreams;
  const UpstreamLimits limits{u.connect_timeout, u.request_timeout, 1 << 20};
  for (const auto& upstream : snap.upstreams) {
    if (!upstream->keyserver() || !upstream->health().healthy()) continue;
    auto until = no_prefix_log_until_.find(upstream->name());
    if (until != no_prefix_log_until_.end() && Steady::now() < until->second) continue;
    // Today's and yesterday's (UTC): a change late yesterday is in yesterday's log only.
    for (const std::int64_t day : {now, now - 86400}) {
      UpstreamAnswer a = co_await upstream->prefix_log(utc_date(day), limits);
      if (a.outcome != Outcome::ok) {
        no_prefix_log_until_[upstream->name()] = Steady::now() + std::chrono::hours(24);
        log::info("prefix_log_unavailable", {{"upstream", upstream->name()},
                                             {"detail", a.detail.empty() ? outcome_name(a.outcome) : a.detail},
                                             {"effect", "asked again in a day; refreshes go by age"}});
        break;
      }
      // Parsed and merged on the pool: a log may be a megabyte, and this strand shares a network
      // thread with cached answers. Nothing else touches changed_ while the loop waits here.
      const std::string& body = a.body;
      auto merge = [this, &body, now] {
        std::size_t fresh = 0;
        for (auto& p : hkp::parse_prefix_log(body, kMaxChangedPrefixes)) {
          if (changed_.size() >= kMaxChangedPrefixes) break;
          prefix_lengths_.insert(p.size());
          fresh += changed_.try_emplace(std::move(p), now).second;
        }
        return fresh;
      };
      const std::size_t fresh = co_await d_.pool.run(merge);
      news += fresh;
      if (fresh > 0) {
        log::info("prefix_log_read", {{"upstream", upstream->name()}, {"day", utc_date(day)},
                                      {"new_prefixes", std::to_string(fresh)}});
      }
    }
  }
  co_return news;
}

asio::awaitable<std::optional<RefreshOutcome>> Refresher::refresh_now(
    cache::Fingerprint fpr, std::shared_ptr<const Snapshot> snap) {
  std::chrono::seconds retry_after{0};
  auto outcome = co_await refresh_one(fpr, std::move(snap), &retry_after);
  co_return outcome;
}

asio::awaitable<std::optional<RefreshOutcome>> Refresher::refresh_one(cache::Fingerprint fpr,
                                                       std::shared_ptr<const Snapshot> snap,
                                                       std::chrono::seconds* retry_after) {
  bool was_revoked = false;
  std::size_t revoked_parts = 0;
  auto count_revoked = [](const hkp::KeyInfo& info) {
    std::size_t n = info.revoked ? 1 : 0;
    for (const auto& u : info.uids) n += u.revoked;
    for (const auto& s : info.subkeys) n += s.revoked;
    return n;
  };
  bool cached = false;
  d_.store.visit_fingerprints(std::span(&fpr, 1), [&](const cache::KeyRecordView& v) {
    cached = true;
    if (auto info = cache::decode_key_info(v.info_bytes)) {
      was_revoked = info->revoked;
      revoked_parts = count_revoked(*info);
    }
  });
  if (!cached) co_return std::nullopt;  // evicted or purged meanwhile: nothing to do
  const std::string hex = fpr.hex();
  hkp::Search search{hkp::SearchKind::fingerprint, hex};
  Fetched fetched = co_await fetch_.keys(search, std::string(), snap, false);
  RefreshOutcome outcome = RefreshOutcome::failed;
  *retry_after = fetched.retry_after;
  if (fetched.found()) {
    outcome = RefreshOutcome::unchanged;
    if (fetched.changed) {
      outcome = RefreshOutcome::updated;
      for (const auto& k : fetched.keys) {
        if (k.info.fingerprint == hex && count_revoked(k.info) > revoked_parts) {
          outcome = RefreshOutcome::revoked;
        }
      }
      log::info("key_refreshed", {{"fingerprint", hex},
                                  {"outcome", refresh_outcome_name(outcome)},
                                  {"upstream", fetched.upstream},
                                  {"key_revoked", was_revoked ? "already" : (outcome == RefreshOutcome::revoked ? "now" : "no")}});
    }
  } else if (fetched.definitive_not_found()) {
    // Nobody has it (an upload never published, say): kept, and counted as refreshed so it is
    // not asked again before its next period.
    outcome = RefreshOutcome::absent;
    cache::WriteBatch batch;
    batch.confirmed.emplace_back(fpr, d_.now());
    co_await fetch_.store(std::move(batch));
  }
  refreshed_.add({refresh_outcome_name(outcome)});
  co_return outcome;
}

}  // namespace hkpgw::gateway
