#include "gateway/service/upstream_fetch.hpp"

#include <algorithm>
#include <map>

#include "cache/merge.hpp"
#include "gateway/observe/log.hpp"
#include "gateway/service/cache_writer.hpp"
#include "gateway/service/work_pool.hpp"
#include "hkp/keyring.hpp"

namespace hkpgw::gateway {

namespace asio = boost::asio;
using hkp::SearchKind;

namespace {

// With every upstream known unhealthy (panic mode) each is still asked, all at once and each
// for at most panic_timeout: one short attempt, not request_timeout per hung upstream.
UpstreamLimits upstream_limits(const config::Config& cfg, bool panic) {
  const auto& u = cfg.upstreams;
  if (panic) {
    return {std::min(u.connect_timeout, u.panic_timeout),
            std::min(u.request_timeout, u.panic_timeout), cfg.keys.max_key_bytes * 8};
  }
  return {u.connect_timeout, u.request_timeout, cfg.keys.max_key_bytes * 8};
}

// An upstream's answer parsed as every answer is: keys past verify_budget_per_submission of
// estimated verification are not verified (a hostile upstream cannot buy more CPU than a client).
hkp::ParseOutcome parse_answer(std::string_view body, const config::Config& cfg) {
  return hkp::parse_keys(body, cfg.keys, SIZE_MAX, hkp::VerifyBudget::first_keys);
}

// "a+b": the upstreams that contributed, in try order (not arrival order, which varies).
std::string join_names(const std::vector<std::string>& names, const Snapshot& snap) {
  std::string out;
  for (const auto& u : snap.upstreams) {
    if (std::find(names.begin(), names.end(), u->name()) != names.end()) {
      out += (out.empty() ? "" : "+") + u->name();
    }
  }
  return out;
}

}  // namespace

void Fetched::remember_if_not_found(const std::string& qkey, std::int64_t now) {
  if (!definitive_not_found()) return;
  settle.queries.emplace_back(qkey, cache::not_found_record(now));
  settle.lazy = true;  // nobody waits for it (the coalescer answers meanwhile)
}

void Fetched::record_unusable(const std::string& name, const UpstreamResponse& r) {
  ++asked;
  if (r.outcome == Outcome::not_found) {
    ++not_found;
    return;
  }
  if (r.outcome == Outcome::cancelled) return;
  log::warn("upstream_failed",
            {{"upstream", name}, {"outcome", outcome_name(r.outcome)}, {"detail", r.detail}});
  ++failed;
  retry_after = std::max(retry_after, r.retry_after);
  if (r.outcome == Outcome::timeout) ++timed_out;
  failures += (failures.empty() ? "" : "; ") + r.detail;
}

asio::awaitable<void> UpstreamFetch::store(cache::WriteBatch batch) {
  const std::error_code ec = co_await commit(d_.store, std::move(batch));
  if (ec && !write_failure_logged_.exchange(true)) {
    log::error("cache_write_failed",
               {{"error", ec.message()}, {"effect", "answers are served but not cached"}});
  }
}

asio::awaitable<void> UpstreamFetch::ask(const Snapshot& snap, UpstreamQuery query, Fetched& out,
                                         Judge judge, const std::string& only) {
  std::vector<std::shared_ptr<Upstream>> candidates;
  if (only.empty()) {
    candidates = d_.fleet.candidates(snap, query);
    out.panic = Fleet::none_healthy(snap);
  } else if (auto u = snap.find(only)) {  // gone in a reload since the route was checked: none
    out.panic = !u->health().healthy();
    if (u->answers(query)) candidates.push_back(std::move(u));
  }
  const UpstreamLimits limits = upstream_limits(*snap.config, out.panic);
  const bool all = snap.config->upstreams.merge == config::MergePolicy::all || out.panic;
  // In panic mode a miss is the circuit breaker's trial, or answered at once (Fleet).
  const bool trial = out.panic && only.empty();
  if (trial) {
    std::chrono::seconds retry_in{0};
    if (!d_.fleet.panic_trial_begin(std::chrono::steady_clock::now(), retry_in)) {
      ++out.failed;
      out.failures = "not asked: the last attempt failed, the next one is in " +
                     std::to_string(retry_in.count()) + " s";
      co_return;
    }
  }
  struct TrialEnd {  // the verdict reaches the fleet however the fan-out ends
    Fleet* fleet;
    const Fetched& out;
    ~TrialEnd() {
      if (fleet) fleet->panic_trial_done(out.asked > out.failed, std::chrono::steady_clock::now());
    }
  } trial_end{trial ? &d_.fleet : nullptr, out};
  co_await d_.fleet.fan_out(snap, std::move(candidates), std::move(query), limits, all,
                          std::move(judge));
}

asio::awaitable<Fetched> UpstreamFetch::keys(hkp::Search search, std::string qkey,
                                             std::shared_ptr<const Snapshot> snap,
                                             bool remember_not_found, std::string only) {
  const auto& cfg = *snap->config;
  const bool merge_all = cfg.upstreams.merge == config::MergePolicy::all;
  Fetched out;
  const cache::Blocklist& blocked = snap->blocked;
  // A blocked key is never asked for (cache/blocklist.hpp): "not found", as if it did not exist.
  if (search.kind == SearchKind::fingerprint && blocked.contains_hex(search.value)) co_return out;
  // Every useful answer, in arrival order. With merge = "first" the first copy carrying user
  // IDs wins; a copy without any (keys.openpgp.org strips unverified ones) is kept, but the next
  // upstream is asked for a better one and the two are merged.
  std::vector<std::string> contributors;
  std::map<std::string, std::string> copies;  // fingerprint -> concatenated packets
  std::vector<std::string> order;             // fingerprints in first-seen order
  std::size_t merged_copies = 0;
  std::size_t beyond = 0;  // matching keys past kMaxKeysPerAnswer, dropped
  auto judge = [&](Upstream& upstream, UpstreamAnswer& r) -> asio::awaitable<Verdict> {
    if (r.outcome == Outcome::ok) {
      // Verification is the pool's work: an answer with thousands of signatures must not
      // hold up a network thread (ARCHITECTURE.md, threads).
      const std::string& body = r.body;
      // A copy refused whole (padded past max_user_ids, say) still brings its revocations to
      // the cached key: nothing an upstream adds may keep a revocation out.
      auto parse = [&body, &cfg, this] {
        hkp::ParseOutcome parsed = parse_answer(body, cfg);
        cache::apply_refused_revocations(d_.store, parsed, cfg.keys);
        return parsed;
      };
      hkp::ParseOutcome parsed = co_await d_.pool.run(parse);
      if (parsed.secret_material) {
        r.outcome = Outcome::bad_response;
        r.detail = upstream.name() + " sent secret key material";
      } else if (parsed.bad_input) {
        r.outcome = Outcome::bad_response;
        r.detail = upstream.name() + ": " + parsed.bad_input->message();
      } else {
        d_.tally.add(parsed.dropped, upstream.name());
        bool any = false, with_uids = false;
        std::size_t withheld = 0;
        for (auto& k : parsed.keys) {
          if (!k.info.matches(search)) continue;
          if (order.size() >= kMaxKeysPerAnswer && !copies.count(k.info.fingerprint)) {
            ++beyond;  // an address flooded with keys: the first ones only, never all
            continue;
          }
          if (blocked.contains_hex(k.info.fingerprint)) {  // never kept, never served
            ++withheld;
            continue;
          }
          any = true;
          with_uids = with_uids || !k.info.uids.empty();
          auto [it, fresh] = copies.try_emplace(k.info.fingerprint);
          if (fresh) order.push_back(k.info.fingerprint);
          else ++merged_copies;
          it->second += k.packets;
        }
        if (any) {
          ++out.asked;
          contributors.push_back(upstream.name());
          if (merge_all) co_return Verdict::go_on;
          if (with_uids) co_return Verdict::done;
          log::info("upstream_key_without_uids",
                    {{"upstream", upstream.name()}, {"effect", "asking the next upstream too"}});
          co_return Verdict::go_on;
        }
        if (withheld > 0) {  // what it had is blocked here: as if it had nothing
          r.outcome = Outcome::not_found;
          out.record_unusable(upstream.name(), r);
          co_return Verdict::go_on;
        }
        // Answered, but nothing in the answer carries what we asked for: never cached.
        d_.metrics.key_mismatch(upstream.name());
        log::warn("upstream_key_mismatch",
                  {{"upstream", upstream.name()},
                   {"search_kind", hkp::kind_name(search.kind)},
                   {"keys_in_answer", std::to_string(parsed.keys.size())}});
        r.outcome = Outcome::not_found;
      }
    }
    out.record_unusable(upstream.name(), r);
    co_return Verdict::go_on;
  };
  UpstreamQuery query{UpstreamQuery::What::keys, search, {}};
  co_await ask(*snap, std::move(query), out, judge, only);
  if (contributors.empty()) {
    if (remember_not_found) out.remember_if_not_found(qkey, d_.now());
    co_return out;
  }

  out.upstream = join_names(contributors, *snap);
  if (beyond > 0) {
    log::warn("upstream_keys_capped", {{"upstreams", out.upstream},
                                       {"search_kind", hkp::kind_name(search.kind)},
                                       {"kept", std::to_string(order.size())},
                                       {"dropped", std::to_string(beyond)}});
  }
  if (merged_copies > 0) {
    log::info("upstream_copies_merged", {{"upstreams", out.upstream},
                                         {"copies", std::to_string(merged_copies + order.size())}});
  }
  co_await store_keys(search, qkey, order, copies, cfg, out);
  co_return out;
}

// Folds the copies (one per upstream that had the key), merges with the cached copy (the
// pool's work too) and stores: a key confirmed as it was only has its freshness moved.
asio::awaitable<void> UpstreamFetch::store_keys(const hkp::Search& search, const std::string& qkey,
                                                const std::vector<std::string>& order,
                                                std::map<std::string, std::string>& copies,
                                                const config::Config& cfg, Fetched& out) {
  auto fold = [&] {
    std::vector<hkp::ParsedKey> keys;
    for (const auto& fpr : order) {
      auto parsed = parse_answer(copies[fpr], cfg);
      for (auto& k : parsed.keys) {
        if (k.info.fingerprint == fpr) keys.push_back(std::move(k));
      }
    }
    auto changes = cache::merge_with_cached(d_.store, keys, cfg.keys);
    return std::make_pair(std::move(keys), std::move(changes));
  };
  auto folded = co_await d_.pool.run(fold);
  out.keys = std::move(folded.first);
  const std::vector<cache::Change> changes = std::move(folded.second);

  const std::int64_t now = d_.now();
  cache::WriteBatch batch;
  for (std::size_t i = 0; i < out.keys.size(); ++i) {
    const auto& k = out.keys[i];
    const auto id = cache::Fingerprint::from_hex(k.info.fingerprint);
    if (changes[i] == cache::Change::unchanged && id) {
      batch.confirmed.emplace_back(*id, now);
    } else {
      out.changed = true;
      batch.keys.push_back({k, now, out.upstream});
    }
  }
  if (search.kind == SearchKind::email) {
    cache::QueryRecord q{now, out.upstream, cache::QueryKind::fingerprints, {}, {}};
    for (const auto& k : out.keys) q.fingerprints.push_back(k.info.fingerprint);
    batch.queries.emplace_back(qkey, std::move(q));
  }
  co_await store(std::move(batch));
}

asio::awaitable<Fetched> UpstreamFetch::index(hkp::Search search, std::string qkey,
                                              std::shared_ptr<const Snapshot> snap,
                                              bool remember_not_found, std::string only) {
  const auto& cfg = *snap->config;
  const bool merge_all = cfg.upstreams.merge == config::MergePolicy::all;
  Fetched out;
  std::vector<std::string> contributors;
  auto judge = [&](Upstream& upstream, UpstreamAnswer& r) -> asio::awaitable<Verdict> {
    if (r.outcome == Outcome::ok && r.keys_to_list) {
      // Keys rather than a listing (WKD): listed here, only those carrying the search, and
      // parsed on the pool like every key from outside.
      const std::string& body = r.body;
      auto list = [&body, &cfg, &search] {
        std::vector<hkp::IndexEntry> entries;
        hkp::ParseOutcome parsed = parse_answer(body, cfg);
        if (parsed.secret_material || parsed.bad_input) return entries;
        for (const auto& k : parsed.keys) {
          if (k.info.matches(search)) entries.push_back(hkp::to_index_entry(k.info));
        }
        return entries;
      };
      r.entries = co_await d_.pool.run(list);
    }
    if (r.outcome == Outcome::ok) {  // blocked keys are listed nowhere
      std::erase_if(r.entries, [&](const auto& e) { return snap->blocked.contains_hex(e.id); });
      if (r.entries.empty()) r.outcome = Outcome::not_found;
    }
    if (r.outcome != Outcome::ok) {
      out.record_unusable(upstream.name(), r);
      co_return Verdict::go_on;
    }
    ++out.asked;
    contributors.push_back(upstream.name());
    for (auto& e : r.entries) {  // union by key; the first listing of a key wins
      auto same = [&](const hkp::IndexEntry& x) { return x.id == e.id; };
      if (std::none_of(out.entries.begin(), out.entries.end(), same)) {
        out.entries.push_back(std::move(e));
      }
    }
    co_return merge_all ? Verdict::go_on : Verdict::done;
  };
  UpstreamQuery query{UpstreamQuery::What::index, search, {}};
  co_await ask(*snap, std::move(query), out, judge, only);
  const std::int64_t now = d_.now();
  if (!contributors.empty()) {
    out.upstream = join_names(contributors, *snap);
    cache::WriteBatch batch;
    batch.queries.emplace_back(
        qkey, cache::QueryRecord{now, out.upstream, cache::QueryKind::index, {}, out.entries});
    co_await store(std::move(batch));
  } else if (remember_not_found) {
    out.remember_if_not_found(qkey, now);
  }
  co_return out;
}

}  // namespace hkpgw::gateway
