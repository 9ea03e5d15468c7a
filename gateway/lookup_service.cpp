#include "gateway/lookup_service.hpp"

#include <boost/asio/async_result.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <array>
#include <map>
#include <mutex>
#include <set>

#include "cache/merge.hpp"
#include "gateway/log.hpp"
#include "gateway/store_io.hpp"
#include "hkp/index.hpp"
#include "hkp/keyring.hpp"
#include "gateway/work_pool.hpp"

namespace hkpgw::gateway {

namespace asio = boost::asio;
using hkp::Op;
using hkp::SearchKind;

namespace {

constexpr std::size_t kMaxLocalTextMatches = 100;

struct CachedKey {
  std::string fingerprint;
  std::array<char, 20> fingerprint_bytes{};  // what note_access() takes (no allocation)
  std::string packets;
  std::optional<hkp::KeyInfo> info;
  std::int64_t fetched_at = 0;
  std::string upstream;
};

std::int64_t seconds(std::chrono::milliseconds d) { return d.count() / 1000; }

HttpResponse keys_response(const std::vector<const std::string*>& packets) {
  HttpResponse r;
  r.content_type = "application/pgp-keys";
  if (packets.size() == 1) {  // the common case: armor straight from the key's packets
    r.body = hkp::armor_public_keys(*packets.front());
    return r;
  }
  std::string all;
  for (const auto* p : packets) all += *p;
  r.body = hkp::armor_public_keys(all);
  return r;
}

HttpResponse index_response(const hkp::LookupRequest& req, std::vector<hkp::IndexEntry> entries,
                            std::int64_t now) {
  HttpResponse r;
  if (req.machine_readable) {
    r.body = hkp::format_mr_index(entries, now);
  } else {
    r.content_type = "text/html; charset=utf-8";
    r.body = hkp::format_html_index(entries, req.search.value, req.op == Op::vindex, now);
  }
  return r;
}

HttpResponse not_found(const hkp::Search& s) {
  return text_response(404, Problem{404, GPG_ERR_NO_DATA, "no key found for " + s.upstream_form()}
                                .message());
}

// How long a client should wait before asking again: about the time probes need to bring an
// upstream back.
std::string retry_after(const config::UpstreamsConfig& u) {
  const auto back = std::chrono::duration_cast<std::chrono::seconds>(u.probe_interval).count() *
                    static_cast<long long>(u.healthy_threshold);
  return std::to_string(std::clamp<long long>(back, 5, 300));
}

HttpResponse upstreams_failed(const hkp::Search& s, bool panic, bool timeouts,
                              const std::string& failures, const Snapshot& snap) {
  HttpResponse r;
  if (panic) {
    // Known before asking: say so, rather than the last failure's detail.
    r = text_response(503, Problem{503, GPG_ERR_NO_KEYSERVER,
                                   "every upstream is unreachable (all " +
                                       std::to_string(snap.upstreams.size()) +
                                       " marked unhealthy by probes and failed requests); " +
                                       s.upstream_form() + " is not cached here"}
                               .message());
  } else if (timeouts) {
    r = text_response(504, Problem{504, GPG_ERR_TIMEOUT,
                                   "no upstream answered in time for " + s.upstream_form()}
                               .message());
  } else {
    r = text_response(503, Problem{503, GPG_ERR_NO_KEYSERVER,
                                   "every upstream failed for " + s.upstream_form() +
                                       (failures.empty() ? "" : " (" + failures + ")")}
                               .message());
  }
  r.set("Retry-After", retry_after(snap.config->upstreams));
  return r;
}

void decorate(HttpResponse& r, const hkp::LookupRequest& req, std::string_view cache,
              std::string_view upstream, std::int64_t age) {
  r.set("X-HKP-Cache", std::string(cache));
  r.set("Access-Control-Allow-Origin", "*");
  if (age >= 0) r.set("Age", std::to_string(age));
  r.log_op = hkp::op_name(req.op);
  r.log_kind = hkp::kind_name(req.search.kind);
  r.log_cache = std::string(cache);
  r.log_upstream = upstream.empty() ? "-" : std::string(upstream);
}

// With every upstream known unhealthy (panic mode) each is still asked, all at once and each
// for at most panic_timeout: one short attempt, not request_timeout per hung upstream.
UpstreamLimits upstream_limits(const config::Config& cfg, bool panic) {
  const auto& u = cfg.upstreams;
  if (panic) {
    return {std::min(u.connect_timeout, u.panic_timeout), std::min(u.request_timeout, u.panic_timeout),
            cfg.keys.max_key_bytes * 8};
  }
  return {u.connect_timeout, u.request_timeout, cfg.keys.max_key_bytes * 8};
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

// What the cache holds for a search.
struct LookupService::Found {
  std::vector<CachedKey> keys;
  std::int64_t oldest = 0;  // oldest fetched_at among the keys
};

// What the upstreams said, after verification, merging and storing.
struct LookupService::Fetched {
  std::string upstream;                  // who answered usefully ("a+b" when merged); "" = nobody
  std::vector<hkp::ParsedKey> keys;      // verified to carry the search (key lookups)
  std::vector<hkp::IndexEntry> entries;  // index lookups
  int asked = 0, failed = 0, timed_out = 0, not_found = 0;
  bool panic = false;  // every upstream was known unhealthy before asking
  std::string failures;                  // "detail; ..." for the 503/504 message

  bool found() const { return !upstream.empty(); }
  // Every upstream asked answered, and none had it: worth remembering as "not found".
  bool definitive_not_found() const { return !found() && failed == 0; }
  // At least one upstream answered that it has nothing: the client hears "not found" (404) even
  // if others failed, but only a definitive answer is remembered.
  bool said_not_found() const { return !found() && (not_found > 0 || failed == 0); }
  bool all_timed_out() const { return asked > 0 && timed_out == asked; }

  // An answer we cannot use: a 404 (or nothing matching) is an answer; anything else is a
  // failure, logged.
  void record_unusable(const std::string& name, const UpstreamResponse& r) {
    ++asked;
    if (r.outcome == Outcome::not_found) {
      ++not_found;
      return;
    }
    if (r.outcome == Outcome::cancelled) return;
    log::warn("upstream_failed",
              {{"upstream", name}, {"outcome", outcome_name(r.outcome)}, {"detail", r.detail}});
    ++failed;
    if (r.outcome == Outcome::timeout) ++timed_out;
    failures += (failures.empty() ? "" : "; ") + r.detail;
  }
};

LookupService::Found LookupService::load_cached(const hkp::Search& search, bool need_info) const {
  Found f;
  auto take = [&](const cache::KeyRecordView& v) {
    CachedKey k;
    k.packets = std::string(v.packets);
    if (need_info) {
      k.info = cache::decode_key_info(v.info_bytes);
      if (k.info) k.fingerprint = k.info->fingerprint;
    }
    if (v.fingerprint.size() == k.fingerprint_bytes.size()) {
      std::copy(v.fingerprint.begin(), v.fingerprint.end(), k.fingerprint_bytes.begin());
    }
    k.fetched_at = v.fetched_at;
    k.upstream = std::string(v.upstream);
    f.keys.push_back(std::move(k));
  };
  if (search.kind == SearchKind::text) {
    store_.visit_text(hkp::ascii_lower(search.value), kMaxLocalTextMatches, take);
  } else {
    store_.visit(search, take);
  }
  for (const auto& k : f.keys) {
    f.oldest = f.oldest == 0 ? k.fetched_at : std::min(f.oldest, k.fetched_at);
  }
  return f;
}

asio::awaitable<void> LookupService::store_and_wait(cache::WriteBatch batch) {
  // The answer waits for the commit, so a lookup that returned 200 is a cached key: the next
  // request (from any client) is a hit.
  const std::error_code ec = co_await commit(store_, std::move(batch));
  if (ec && !write_failure_logged_.exchange(true)) {
    log::error("cache_write_failed",
               {{"error", ec.message()}, {"effect", "answers are served but not cached"}});
  }
}

void LookupService::count_dropped(const std::map<std::string, std::size_t>& dropped,
                                  std::string_view source) {
  if (dropped.empty()) return;
  std::string summary;
  {
    std::lock_guard lock(dropped_mutex_);
    for (const auto& [reason, n] : dropped) {
      dropped_[reason] += n;
      if (metrics_) metrics_->keys_rejected(reason, n);
      summary += (summary.empty() ? "" : ",") + reason + ":" + std::to_string(n);
    }
  }
  log::info("keys_cleaned", {{"upstream", std::string(source)}, {"dropped", summary}});
}

std::map<std::string, std::uint64_t> LookupService::dropped_totals() const {
  std::lock_guard lock(dropped_mutex_);
  return dropped_;
}

asio::awaitable<LookupService::Fetched> LookupService::fetch_keys(
    hkp::Search search, std::string qkey, std::shared_ptr<const Snapshot> snap) {
  const auto& cfg = *snap->config;
  const std::int64_t now = now_();
  const bool merge_all = cfg.upstreams.merge == config::MergePolicy::all;
  Fetched out;
  std::string target =
      "/pks/lookup?op=get&options=mr&search=" + hkp::percent_encode(search.upstream_form());
  if (search.kind == SearchKind::email) target += "&exact=on";

  // Every useful answer, in arrival order. With merge = "first" the first copy carrying user
  // IDs wins; a copy without any (keys.openpgp.org strips unverified ones) is kept, but the next
  // upstream is asked for a better one and the two are merged.
  std::vector<std::string> contributors;
  std::map<std::string, std::string> copies;  // fingerprint -> concatenated packets
  std::vector<std::string> order;             // fingerprints in first-seen order
  std::size_t merged_copies = 0;
  auto judge = [&](UpstreamClient& client, UpstreamResponse& r) -> asio::awaitable<Verdict> {
    if (r.outcome == Outcome::ok) {
      // Verification is the pool's work: an answer with thousands of signatures must not
      // hold up a network thread (ARCHITECTURE.md, threads).
      const std::string& body = r.body;
      auto parse = [&body, &cfg] { return hkp::parse_keys(body, cfg.keys); };
      hkp::ParseOutcome parsed = co_await pool_.run(parse);
      if (parsed.secret_material) {
        r.outcome = Outcome::bad_response;
        r.detail = client.name() + " sent secret key material";
      } else if (parsed.bad_input) {
        r.outcome = Outcome::bad_response;
        r.detail = client.name() + ": " + parsed.bad_input->message();
      } else {
        count_dropped(parsed.dropped, client.name());
        bool any = false, with_uids = false;
        for (auto& k : parsed.keys) {
          if (!k.info.matches(search)) continue;
          any = true;
          with_uids = with_uids || !k.info.uids.empty();
          auto [it, fresh] = copies.try_emplace(k.info.fingerprint);
          if (fresh) order.push_back(k.info.fingerprint);
          else ++merged_copies;
          it->second += k.packets;
        }
        if (any) {
          ++out.asked;
          contributors.push_back(client.name());
          if (merge_all) co_return Verdict::go_on;
          if (with_uids) co_return Verdict::done;
          log::info("upstream_key_without_uids",
                    {{"upstream", client.name()}, {"effect", "asking the next upstream too"}});
          co_return Verdict::go_on;
        }
        // Answered, but nothing in the answer carries what we asked for: never cached.
        if (metrics_) metrics_->key_mismatch(client.name());
        log::warn("upstream_key_mismatch",
                  {{"upstream", client.name()},
                   {"search_kind", hkp::kind_name(search.kind)},
                   {"keys_in_answer", std::to_string(parsed.keys.size())}});
        r.outcome = Outcome::not_found;
      }
    }
    out.record_unusable(client.name(), r);
    co_return Verdict::go_on;
  };
  auto candidates = fleet_.candidates(*snap);
  out.panic = Fleet::none_healthy(*snap);
  const UpstreamLimits limits = upstream_limits(cfg, out.panic);
  co_await fleet_.fan_out(*snap, std::move(candidates), target, limits, merge_all || out.panic,
                          judge);
  if (contributors.empty()) co_return out;

  out.upstream = join_names(contributors, *snap);
  // Fold the copies (one per upstream that had the key) and merge with the cached copy: the
  // pool's work too.
  auto fold = [&] {
    std::vector<hkp::ParsedKey> keys;
    for (const auto& fpr : order) {
      auto parsed = hkp::parse_keys(copies[fpr], cfg.keys);
      for (auto& k : parsed.keys) {
        if (k.info.fingerprint == fpr) keys.push_back(std::move(k));
      }
    }
    auto changes = cache::merge_with_cached(store_, keys, cfg.keys);
    return std::make_pair(std::move(keys), std::move(changes));
  };
  auto folded = co_await pool_.run(fold);
  out.keys = std::move(folded.first);
  const std::vector<cache::Change> changes = std::move(folded.second);
  if (merged_copies > 0) {
    log::info("upstream_copies_merged", {{"upstreams", out.upstream},
                                         {"copies", std::to_string(merged_copies + order.size())}});
  }

  cache::WriteBatch batch;
  for (std::size_t i = 0; i < out.keys.size(); ++i) {
    const auto& k = out.keys[i];
    if (changes[i] == cache::Change::unchanged) {  // confirmed as it was: only its freshness moves
      batch.confirmed.emplace_back(cache::fingerprint_bytes(k.info.fingerprint), now);
    } else {
      batch.keys.push_back({k, now, out.upstream});
    }
  }
  if (search.kind == SearchKind::email) {
    cache::QueryRecord q{now, out.upstream, cache::QueryKind::fingerprints, {}, {}};
    for (const auto& k : out.keys) q.fingerprints.push_back(k.info.fingerprint);
    batch.queries.emplace_back(qkey, std::move(q));
  }
  co_await store_and_wait(std::move(batch));
  co_return out;
}

asio::awaitable<LookupService::Fetched> LookupService::fetch_index(
    hkp::Search search, std::string qkey, std::shared_ptr<const Snapshot> snap) {
  const auto& cfg = *snap->config;
  const std::int64_t now = now_();
  const bool merge_all = cfg.upstreams.merge == config::MergePolicy::all;
  Fetched out;
  const std::string target = "/pks/lookup?op=index&options=mr&fingerprint=on&search=" +
                             hkp::percent_encode(search.value);
  std::vector<std::string> contributors;
  auto judge = [&](UpstreamClient& client, UpstreamResponse& r) -> asio::awaitable<Verdict> {
    if (r.outcome == Outcome::ok) {
      auto entries = hkp::parse_mr_index(r.body);
      if (entries && !entries->empty()) {
        ++out.asked;
        contributors.push_back(client.name());
        for (auto& e : *entries) {  // union by key; the first listing of a key wins
          auto same = [&](const hkp::IndexEntry& x) { return x.id == e.id; };
          if (std::none_of(out.entries.begin(), out.entries.end(), same)) {
            out.entries.push_back(std::move(e));
          }
        }
        co_return merge_all ? Verdict::go_on : Verdict::done;
      }
      if (entries) {
        r.outcome = Outcome::not_found;  // an empty listing is "nothing found"
      } else {
        r.outcome = Outcome::bad_response;
        r.detail = client.name() + ": " + entries.error().message();
      }
    }
    out.record_unusable(client.name(), r);
    co_return Verdict::go_on;
  };
  auto candidates = fleet_.candidates(*snap);
  out.panic = Fleet::none_healthy(*snap);
  const UpstreamLimits limits = upstream_limits(cfg, out.panic);
  co_await fleet_.fan_out(*snap, std::move(candidates), target, limits, merge_all || out.panic,
                          judge);
  cache::WriteBatch batch;
  if (!contributors.empty()) {
    out.upstream = join_names(contributors, *snap);
    batch.queries.emplace_back(
        qkey, cache::QueryRecord{now, out.upstream, cache::QueryKind::index, {}, out.entries});
  } else if (out.definitive_not_found()) {
    batch.queries.emplace_back(qkey,
                               cache::QueryRecord{now, "", cache::QueryKind::not_found, {}, {}});
  }
  if (!batch.empty()) co_await store_and_wait(std::move(batch));
  co_return out;
}

asio::awaitable<std::shared_ptr<const LookupService::Fetched>> LookupService::shared_fetch(
    bool index, const hkp::Search& search, const std::string& qkey,
    std::shared_ptr<const Snapshot> snap) {
  // Each co_await is a statement of its own with named operands (GCC 12 mishandles temporaries
  // that live across a suspension inside one full-expression).
  std::shared_ptr<const Fetched> result;
  if (index) {
    auto work = [&] { return fetch_index(search, qkey, snap); };
    result = co_await indexes_.run(qkey, work);
  } else {
    auto work = [&] { return fetch_keys(search, qkey, snap); };
    result = co_await keys_.run(qkey, work);
  }
  co_return result;
}

void LookupService::revalidate_in_background(bool index, const hkp::Search& search,
                                             const std::string& qkey,
                                             std::shared_ptr<const Snapshot> snap) {
  if ((index ? indexes_.running(qkey) : keys_.running(qkey))) return;  // already on its way
  asio::co_spawn(
      asio::make_strand(background_),
      [this, index, search, qkey, snap]() -> asio::awaitable<void> {
        try {
          auto f = co_await shared_fetch(index, search, qkey, snap);
          log::info("revalidated", {{"kind", hkp::kind_name(search.kind)},
                                    {"in", "background"},
                                    {"upstream", f->found() ? f->upstream : "-"},
                                    {"result", f->found() ? "refreshed" : "kept"}});
        } catch (const std::exception& e) {
          log::error("revalidation_failed", {{"error", e.what()}});
        }
      },
      asio::detached);
}

asio::awaitable<HttpResponse> LookupService::lookup(const hkp::LookupRequest& request,
                                                    bool client_no_cache,
                                                    std::shared_ptr<const Snapshot> snapshot) {
  const auto& cfg = *snapshot->config;
  // The lookup policy, whichever front the request came in by.
  if (request.search.kind == SearchKind::short_keyid &&
      cfg.keys.short_key_ids == config::ShortKeyIds::reject) {
    HttpResponse r = text_response(
        400, Problem{400, GPG_ERR_FORBIDDEN,
                     "32-bit key IDs are forgeable and not accepted; search by fingerprint or "
                     "16-digit key ID"}
                 .message());
    r.log_op = hkp::op_name(request.op);
    r.log_kind = hkp::kind_name(request.search.kind);
    co_return r;
  }
  const bool no_cache = client_no_cache && cfg.server.honor_client_no_cache;
  const bool key_shaped =
      request.search.is_key_id() || (request.op == Op::get && request.search.kind == SearchKind::email);
  if (key_shaped) {
    co_return co_await lookup_keys(request, no_cache, std::move(snapshot));
  }
  co_return co_await lookup_index(request, no_cache, std::move(snapshot));
}

asio::awaitable<HttpResponse> LookupService::lookup_keys(const hkp::LookupRequest& req,
                                                         bool no_cache,
                                                         std::shared_ptr<const Snapshot> snap) {
  const auto& cache_cfg = snap->config->cache;
  const hkp::Search& search = req.search;
  const std::int64_t now = now_();
  const bool want_index = req.op != Op::get;
  const std::string qkey = cache::query_key(Op::get, search);

  // Email answers merge cached and fetched keys, which needs their fingerprints.
  Found found = load_cached(search, want_index || search.kind == SearchKind::email);
  // An email's answer is complete only if the upstreams were asked for that address recently;
  // an ID's answer is the key itself, so a cached ID needs no query record (hot path).
  std::optional<cache::QueryRecord> query;
  if (search.kind == SearchKind::email || found.keys.empty()) query = store_.get_query(qkey);
  std::int64_t fetched_at = found.oldest;
  if (search.kind == SearchKind::email) {
    fetched_at = query && query->kind != cache::QueryKind::not_found ? query->fetched_at : 0;
  }
  const bool have_answer = !found.keys.empty() && fetched_at != 0;
  const std::int64_t age = now - fetched_at;

  auto serve_cached = [&](std::string_view how, std::int64_t since) {
    for (const auto& k : found.keys) {  // for LRU
      store_.note_access(std::string_view(k.fingerprint_bytes.data(), k.fingerprint_bytes.size()));
    }
    HttpResponse r;
    if (want_index) {
      std::vector<hkp::IndexEntry> entries;
      for (const auto& k : found.keys) {
        if (k.info) entries.push_back(hkp::to_index_entry(*k.info));
      }
      r = index_response(req, std::move(entries), now);
    } else {
      std::vector<const std::string*> packets;
      for (const auto& k : found.keys) packets.push_back(&k.packets);
      r = keys_response(packets);
    }
    decorate(r, req, how, found.keys.empty() ? "" : found.keys.front().upstream, now - since);
    return r;
  };

  const bool cache_only = search.kind == SearchKind::short_keyid;
  if (have_answer && (cache_only || (age < seconds(cache_cfg.fresh_for) && !no_cache))) {
    co_return serve_cached("hit", fetched_at);
  }
  if (found.keys.empty() && query && query->kind == cache::QueryKind::not_found && !no_cache &&
      now - query->fetched_at < seconds(cache_cfg.negative_ttl)) {
    HttpResponse r = not_found(search);
    decorate(r, req, "negative", "", now - query->fetched_at);
    co_return r;
  }
  if (cache_only) {  // never asked upstream; cached keys were served above
    HttpResponse r = not_found(search);
    decorate(r, req, "miss", "", -1);
    co_return r;
  }
  if (have_answer && !no_cache &&
      age < seconds(cache_cfg.fresh_for) + seconds(cache_cfg.stale_while_revalidate)) {
    revalidate_in_background(false, search, qkey, snap);
    co_return serve_cached("stale", fetched_at);
  }

  const auto fetched = co_await shared_fetch(false, search, qkey, snap);
  if (fetched->found()) {
    // The answer: what the upstreams sent (merged with our copy), plus any other cached key
    // carrying the address.
    std::set<std::string> fresh;
    for (const auto& k : fetched->keys) fresh.insert(k.info.fingerprint);
    HttpResponse r;
    if (want_index) {
      std::vector<hkp::IndexEntry> entries;
      for (const auto& k : fetched->keys) entries.push_back(hkp::to_index_entry(k.info));
      r = index_response(req, std::move(entries), now);
    } else {
      std::vector<const std::string*> packets;
      for (const auto& k : fetched->keys) packets.push_back(&k.packets);
      for (const auto& k : found.keys) {
        if (search.kind == SearchKind::email && !fresh.contains(k.fingerprint)) {
          packets.push_back(&k.packets);
        }
      }
      r = keys_response(packets);
    }
    decorate(r, req, have_answer ? "revalidated" : "miss", fetched->upstream, 0);
    co_return r;
  }

  // Nothing usable from upstream. The cache is the organisation's copy of the key world: a key
  // we hold (uploaded here, or dropped upstream) is still served, as stale.
  if (!found.keys.empty() && (fetched->definitive_not_found() ||
                              now - found.oldest <= seconds(cache_cfg.stale_if_error))) {
    co_return serve_cached("stale", found.oldest);
  }
  if (fetched->said_not_found()) {
    if (fetched->definitive_not_found()) {
      cache::WriteBatch batch;
      batch.queries.emplace_back(qkey,
                                 cache::QueryRecord{now, "", cache::QueryKind::not_found, {}, {}});
      co_await store_and_wait(std::move(batch));
    }
    HttpResponse r = not_found(search);
    decorate(r, req, "miss", "", -1);
    co_return r;
  }
  HttpResponse r = upstreams_failed(search, fetched->panic, fetched->all_timed_out(),
                                    fetched->failures, *snap);
  decorate(r, req, "miss", "", -1);
  co_return r;
}

asio::awaitable<HttpResponse> LookupService::lookup_index(const hkp::LookupRequest& req,
                                                          bool no_cache,
                                                          std::shared_ptr<const Snapshot> snap) {
  const auto& cache_cfg = snap->config->cache;
  const hkp::Search& search = req.search;
  const std::int64_t now = now_();
  const std::string qkey = cache::query_key(Op::index, search);

  // Keys we hold that carry the address are always listed, whatever the upstreams say.
  std::vector<hkp::IndexEntry> local;
  if (search.kind == SearchKind::email) {
    for (auto& k : load_cached(search, true).keys) {
      if (k.info) local.push_back(hkp::to_index_entry(*k.info));
    }
  }
  auto respond = [&](std::vector<hkp::IndexEntry> entries, std::string_view how,
                     std::string_view upstream, std::int64_t age) {
    for (auto& l : local) {
      auto same = [&](const hkp::IndexEntry& e) { return e.id == l.id; };
      auto it = std::find_if(entries.begin(), entries.end(), same);
      if (it == entries.end()) {
        entries.push_back(l);
      } else {
        *it = l;  // our verified copy beats the upstream's listing
      }
    }
    if (entries.empty()) {
      HttpResponse r = not_found(search);
      decorate(r, req, how, upstream, age);
      return r;
    }
    HttpResponse r = index_response(req, std::move(entries), now);
    decorate(r, req, how, upstream, age);
    return r;
  };

  std::optional<cache::QueryRecord> query = store_.get_query(qkey);
  const bool have_answer = query && query->kind == cache::QueryKind::index;
  const std::int64_t age = query ? now - query->fetched_at : 0;
  if (query && !no_cache) {
    if (have_answer && age < seconds(cache_cfg.fresh_for)) {
      co_return respond(query->entries, "hit", query->upstream, age);
    }
    if (query->kind == cache::QueryKind::not_found && age < seconds(cache_cfg.negative_ttl)) {
      co_return respond({}, "negative", "", age);
    }
    if (have_answer &&
        age < seconds(cache_cfg.fresh_for) + seconds(cache_cfg.stale_while_revalidate)) {
      revalidate_in_background(true, search, qkey, snap);
      co_return respond(query->entries, "stale", query->upstream, age);
    }
  }

  const auto fetched = co_await shared_fetch(true, search, qkey, snap);
  if (fetched->found()) {
    co_return respond(fetched->entries, have_answer ? "revalidated" : "miss", fetched->upstream, 0);
  }
  if (fetched->said_not_found()) {
    co_return respond({}, "miss", "", -1);
  }
  if (have_answer && age <= seconds(cache_cfg.stale_if_error)) {
    co_return respond(query->entries, "stale", query->upstream, age);
  }
  // Every upstream failed and no listing is remembered: answer from what the cache knows (keys
  // whose addresses match), marked stale.
  if (search.kind == SearchKind::text) {
    for (auto& k : load_cached(search, true).keys) {
      if (k.info) local.push_back(hkp::to_index_entry(*k.info));
    }
  }
  if (!local.empty()) {
    co_return respond({}, "stale", "", -1);
  }
  HttpResponse r = upstreams_failed(search, fetched->panic, fetched->all_timed_out(),
                                    fetched->failures, *snap);
  decorate(r, req, "miss", "", -1);
  co_return r;
}

}  // namespace hkpgw::gateway
