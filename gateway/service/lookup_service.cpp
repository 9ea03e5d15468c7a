#include "gateway/service/lookup_service.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/strand.hpp>
#include <set>

#include "gateway/observe/log.hpp"
#include "gateway/service/work_pool.hpp"
#include "hkp/index.hpp"

namespace hkpgw::gateway {

namespace asio = boost::asio;
using hkp::Op;
using hkp::SearchKind;

namespace {

constexpr std::size_t kMaxLocalTextMatches = 100;
// The text fallback scans the address index (substring match): bounded to this many entries,
// about 70 ms of a pool thread, never a network thread's.
constexpr std::size_t kMaxLocalTextScan = 2'000'000;

struct CachedKey {
  std::string fingerprint;  // hex, when the info was loaded
  cache::Fingerprint id;
  std::shared_ptr<const AnswerCache::Prepared> key;  // packets and armor, when an answer sends them
  std::optional<hkp::KeyInfo> info;
  std::int64_t fetched_at = 0;
  std::int64_t accessed_at = 0;
  std::string upstream;
};

std::int64_t seconds(std::chrono::milliseconds d) { return d.count() / 1000; }

using Result = LookupOutcome::Result;

LookupOutcome not_found(const hkp::Search& s, CacheResult cache, std::int64_t age) {
  LookupOutcome o;
  o.result = Result::not_found;
  // "No keys found" is SKS's wording, which OpenKeychain looks for to tell "no such key" from
  // "no such keyserver".
  o.problem = Problem{404, GPG_ERR_NO_DATA, "No keys found for " + s.upstream_form()};
  o.cache = cache;
  o.age = age;
  return o;
}

// How long a client should wait before asking again: about the time probes need to bring an
// upstream back.
std::chrono::seconds retry_after(const config::UpstreamsConfig& u) {
  const auto back = std::chrono::duration_cast<std::chrono::seconds>(u.probe_interval).count() *
                    static_cast<long long>(u.healthy_threshold);
  return std::chrono::seconds(std::clamp<long long>(back, 5, 300));
}

LookupOutcome upstreams_failed(const hkp::Search& s, const Fetched& f, const Snapshot& snap) {
  LookupOutcome o;
  o.result = Result::unavailable;
  o.cache = CacheResult::miss;
  if (f.panic) {
    // Known before asking: say so, rather than the last failure's detail.
    o.problem = Problem{503, GPG_ERR_NO_KEYSERVER,
                        "every upstream is unreachable (all " +
                            std::to_string(snap.upstreams.size()) +
                            " marked unhealthy by probes and failed requests); " +
                            s.upstream_form() + " is not cached here" +
                            (f.asked == 0 && !f.failures.empty() ? "; " + f.failures
                                                                : std::string())};
  } else if (f.all_timed_out()) {
    o.problem = Problem{504, GPG_ERR_TIMEOUT, "no upstream answered in time for " + s.upstream_form()};
  } else {
    o.problem = Problem{503, GPG_ERR_NO_KEYSERVER,
                        "every upstream failed for " + s.upstream_form() +
                            (f.failures.empty() ? "" : " (" + f.failures + ")")};
  }
  o.retry_after = retry_after(snap.config->upstreams);
  return o;
}

LookupOutcome found(CacheResult cache, std::string_view upstream, std::int64_t age) {
  LookupOutcome o;
  o.cache = cache;
  o.upstream = std::string(upstream);
  o.age = age;
  return o;
}

}  // namespace

// One key of an answer, cached or just fetched, with its info when it was loaded (a pointer
// into the Found or the Fetched it came from, read at once).
struct LookupService::Served {
  AnsweredKey key;
  bool has_id = false;
  const hkp::KeyInfo* info = nullptr;

  static Served cached(const CachedKey& k) {
    return {AnsweredKey{k.id, k.key, nullptr}, true, k.info ? &*k.info : nullptr};
  }
  static Served fetched(const std::shared_ptr<const Fetched>& f, const hkp::ParsedKey& k) {
    Served s;
    const auto id = cache::Fingerprint::from_hex(k.info.fingerprint);
    s.has_id = id.has_value();
    if (id) s.key.id = *id;
    s.key.packets = std::shared_ptr<const std::string>(f, &k.packets);  // shares the fetch
    s.info = &k.info;
    return s;
  }
};

// A key-shaped lookup's answer: the keys themselves (op=get) or their listing (op=index by
// key ID), `keys` cached or just fetched, each with its info when loaded.
void LookupService::answer_with(const hkp::LookupRequest& req, std::vector<Served> keys,
                                LookupOutcome& o) const {
  if (req.op != Op::get) {
    o.result = Result::listing;
    for (const auto& k : keys) {
      if (k.info) o.entries.push_back(hkp::to_index_entry(*k.info));
    }
    return;
  }
  o.result = Result::keys;
  // One key with its fingerprint: armored once and shared (with the answer cache, and with
  // every later answer of it).
  if (keys.size() == 1 && !keys.front().key.prepared && keys.front().has_id) {
    AnsweredKey& k = keys.front().key;
    k.prepared = answers_.prepared(k.id, *k.packets);
    k.packets.reset();
  }
  for (auto& k : keys) o.keys.push_back(std::move(k.key));
}

// What the cache holds for a search.
struct LookupService::Found {
  std::vector<CachedKey> keys;
  std::int64_t oldest = 0;  // oldest fetched_at among the keys

  std::vector<Served> served() const {
    std::vector<Served> out;
    for (const auto& k : keys) out.push_back(Served::cached(k));
    return out;
  }
};

// A key-shaped lookup (by key ID, fingerprint, or op=get by address) and what the cache has.
struct LookupService::KeyLookup {
  const hkp::LookupRequest& req;
  bool no_cache = false;
  std::int64_t now = 0;
  std::string qkey;  // cache::query_key(): made only when needed (not for a cached ID's hit)
  Found found;
  std::optional<cache::QueryRecord> query;
  std::int64_t fetched_at = 0;  // when the cached answer was last confirmed (0 = none)
  std::uint64_t generation = 0;  // ReusedAnswers::generation() before the cache was read
  std::uint64_t queries_generation = 0;

  bool have_answer() const { return !found.keys.empty() && fetched_at != 0; }
  std::int64_t age() const { return now - fetched_at; }
};

LookupService::Found LookupService::load_cached(const hkp::Search& search, bool need_info,
                                               bool need_packets) const {
  Found f;
  // One capture, so the std::function the store takes keeps it inline (no allocation).
  struct {
    const LookupService* self;
    bool need_info, need_packets;
    Found* f;
  } const in{this, need_info, need_packets, &f};
  auto take = [c = &in](const cache::KeyRecordView& v) {
    CachedKey k;
    // Read in the transaction, compared with the answer cache's copy: packets are copied (and
    // armored) only when the key changed since it was last served.
    if (c->need_packets) k.key = c->self->answers_.prepared(v.fingerprint, v.packets);
    if (c->need_info) {
      k.info = cache::decode_key_info(v.info_bytes);
      if (k.info) k.fingerprint = k.info->fingerprint;
    }
    k.id = v.fingerprint;
    k.fetched_at = v.fetched_at;
    k.accessed_at = v.accessed_at;
    k.upstream = std::string(v.upstream);
    c->f->keys.push_back(std::move(k));
  };
  if (search.kind == SearchKind::text) {
    store_.visit_text(hkp::ascii_lower(search.value), kMaxLocalTextMatches, take, kMaxLocalTextScan);
  } else {
    store_.visit(search, take);
  }
  for (const auto& k : f.keys) {
    f.oldest = f.oldest == 0 ? k.fetched_at : std::min(f.oldest, k.fetched_at);
  }
  return f;
}

void LookupService::note_served(const Found& found) const {
  for (const auto& k : found.keys) {  // for LRU
    store_.note_access(k.id, k.accessed_at);
  }
}

asio::awaitable<LookupService::SharedFetch> LookupService::shared_fetch(
    bool index, const hkp::Search& search, const std::string& qkey,
    std::shared_ptr<const Snapshot> snap, bool remember_not_found, const std::string& only) {
  // Each co_await is a statement of its own with named operands (GCC 12 mishandles temporaries
  // that live across a suspension inside one full-expression).
  // A remembered "not found" is committed after the answer: the fetch stays settled (new callers
  // get it at once, as `negative`) until the commit ends.
  auto settle = [this](Fetched& f) -> Coalescer<Fetched>::Tail {
    if (f.settle.empty()) return std::nullopt;
    return fetch_.store(std::move(f.settle));
  };
  SharedFetch result;
  const std::string shared_key = only.empty() ? qkey : "u/" + only + "/" + qkey;
  if (index) {
    auto work = [&] { return fetch_.index(search, qkey, snap, remember_not_found, only); };
    result = co_await indexes_.run(shared_key, work, settle);
  } else {
    auto work = [&] { return fetch_.keys(search, qkey, snap, remember_not_found, only); };
    result = co_await keys_.run(shared_key, work, settle);
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
          // A listing's "not found" replaces the stale listing; a key lookup had keys cached.
          const SharedFetch shared = co_await shared_fetch(index, search, qkey, snap, index);
          const auto& f = shared.result;
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

asio::awaitable<LookupOutcome> LookupService::lookup(const hkp::LookupRequest& request,
                                                    bool client_no_cache,
                                                    std::shared_ptr<const Snapshot> snapshot,
                                                    std::string only) {
  const auto& cfg = *snapshot->config;
  // The lookup policy, whichever front the request came in by.
  if (request.search.kind == SearchKind::short_keyid &&
      cfg.keys.short_key_ids == config::ShortKeyIds::reject) {
    LookupOutcome o;
    o.result = Result::refused;
    o.problem = Problem{400, GPG_ERR_FORBIDDEN,
                        "32-bit key IDs are forgeable and not accepted; search by fingerprint or "
                        "16-digit key ID"};
    co_return o;
  }
  const bool no_cache = client_no_cache && cfg.server.honor_client_no_cache;
  LookupOutcome o;
  const bool key_shaped = request.search.is_key_id() ||
                          (request.op == Op::get && request.search.kind == SearchKind::email);
  if (request.op == Op::get && request.search.kind == SearchKind::text) {
    o = co_await lookup_text_keys(request, no_cache, std::move(snapshot), std::move(only));
  } else if (key_shaped) {
    o = co_await lookup_keys(request, no_cache, std::move(snapshot), std::move(only));
  } else {
    o = co_await lookup_index(request, no_cache, std::move(snapshot), std::move(only));
  }
  if (o.now == 0) o.now = now_();
  co_return o;
}

asio::awaitable<LookupOutcome> LookupService::lookup_keys(const hkp::LookupRequest& req,
                                                         bool no_cache,
                                                         std::shared_ptr<const Snapshot> snap,
                                                         std::string only) {
  const hkp::Search& search = req.search;
  const bool email = search.kind == SearchKind::email;
  KeyLookup l{req, no_cache, now_(), {}, {}, {}, 0};
  l.generation = answers_.reused().generation();  // before the read: see ReusedAnswers
  l.queries_generation = answers_.reused().queries_generation();
  // Email answers merge cached and fetched keys, which needs their fingerprints.
  l.found = load_cached(search, req.op != Op::get || email, req.op == Op::get);
  // An email's answer is complete only if the upstreams were asked for that address recently;
  // an ID's answer is the key itself, so a cached ID needs no query record (hot path).
  if (email || l.found.keys.empty()) {
    l.qkey = cache::query_key(Op::get, search);
    l.query = store_.get_query(l.qkey);
  }
  l.fetched_at = l.found.oldest;
  if (email) {
    l.fetched_at = l.query && l.query->kind != cache::QueryKind::not_found ? l.query->fetched_at : 0;
  }
  if (auto cached = keys_from_cache(l, snap)) co_return std::move(*cached);

  if (l.qkey.empty()) l.qkey = cache::query_key(Op::get, search);
  const bool remember = l.found.keys.empty() && only.empty();
  const SharedFetch fetched = co_await shared_fetch(false, search, l.qkey, snap, remember, only);
  co_return keys_after_fetch(l, fetched, *snap);
}

std::optional<LookupOutcome> LookupService::keys_from_cache(const KeyLookup& l,
                                                           std::shared_ptr<const Snapshot> snap) {
  const auto& c = snap->config->cache;
  const hkp::Search& search = l.req.search;
  auto serve = [&](CacheResult how) {
    note_served(l.found);
    LookupOutcome o = found(how, l.found.keys.front().upstream, l.age());
    answer_with(l.req, l.found.served(), o);
    return o;
  };
  const bool cache_only = search.kind == SearchKind::short_keyid;  // never asked upstream
  if (l.have_answer() && (cache_only || (l.age() < seconds(c.fresh_for) && !l.no_cache))) {
    LookupOutcome r = serve(CacheResult::hit);
    // A get by ID, fingerprint or address: the same answer may go out again, as it is, until
    // its fresh_for ends or an access time needs writing (ReusedAnswers).
    const bool email = search.kind == SearchKind::email;
    if (l.req.op == Op::get && (email || (search.is_key_id() && l.found.keys.size() == 1))) {
      const std::int64_t granularity = store_.access_granularity();
      // This read noted each access that was due: the next note is due a granularity from now.
      std::int64_t access_due = l.now + granularity;
      for (const CachedKey& k : l.found.keys) {
        if (l.now - k.accessed_at < granularity) {
          access_due = std::min(access_due, k.accessed_at + granularity);
        }
      }
      const std::int64_t fresh_end =
          cache_only ? l.now + seconds(c.fresh_for) : l.fetched_at + seconds(c.fresh_for);
      r.reuse = std::make_shared<const ReusedAnswers::Ticket>(ReusedAnswers::Ticket{
          l.found.keys.front().id, l.generation, l.fetched_at, std::min(access_due, fresh_end),
          email, l.queries_generation});
    }
    return r;
  }
  if (l.found.keys.empty() && l.query && l.query->kind == cache::QueryKind::not_found &&
      !l.no_cache && l.now - l.query->fetched_at < seconds(c.negative_ttl)) {
    return not_found(search, CacheResult::negative, l.now - l.query->fetched_at);
  }
  if (cache_only) return not_found(search, CacheResult::miss, -1);
  if (l.have_answer() && !l.no_cache &&
      l.age() < seconds(c.fresh_for) + seconds(c.stale_while_revalidate)) {
    const std::string qkey = l.qkey.empty() ? cache::query_key(Op::get, search) : l.qkey;
    revalidate_in_background(false, search, qkey, snap);
    return serve(CacheResult::stale);
  }
  return std::nullopt;
}

LookupOutcome LookupService::keys_after_fetch(const KeyLookup& l, const SharedFetch& shared,
                                             const Snapshot& snap) {
  const hkp::Search& search = l.req.search;
  const Fetched& fetched = *shared.result;
  if (fetched.found()) {
    // The answer: what the upstreams sent (merged with our copy), plus any other cached key
    // carrying the address.
    std::vector<Served> keys;
    std::set<std::string> fresh;
    for (const auto& k : fetched.keys) {
      keys.push_back(Served::fetched(shared.result, k));
      fresh.insert(k.info.fingerprint);
    }
    if (search.kind == SearchKind::email) {
      for (const auto& k : l.found.keys) {
        if (!fresh.contains(k.fingerprint)) keys.push_back(Served::cached(k));
      }
    }
    LookupOutcome o = found(l.have_answer() ? CacheResult::revalidated : CacheResult::miss,
                            fetched.upstream, 0);
    answer_with(l.req, std::move(keys), o);
    return o;
  }
  // Nothing usable from upstream. The cache is the organisation's copy of the key world: a key
  // we hold (uploaded here, or dropped upstream) is still served, as stale.
  const auto& c = snap.config->cache;
  if (!l.found.keys.empty() && (fetched.definitive_not_found() ||
                                l.now - l.found.oldest <= seconds(c.stale_if_error))) {
    note_served(l.found);
    LookupOutcome o = found(CacheResult::stale, l.found.keys.front().upstream, l.now - l.found.oldest);
    answer_with(l.req, l.found.served(), o);
    return o;
  }
  if (fetched.said_not_found()) {
    // Settled: a "not found" fetched a moment ago and being remembered, so not asked again.
    const bool remembered = shared.settled && fetched.definitive_not_found();
    return not_found(search, remembered ? CacheResult::negative : CacheResult::miss,
                     remembered ? 0 : -1);
  }
  return upstreams_failed(search, fetched, snap);
}

asio::awaitable<LookupOutcome> LookupService::lookup_text_keys(const hkp::LookupRequest& req,
                                                               bool no_cache,
                                                               std::shared_ptr<const Snapshot> snap,
                                                               std::string only) {
  hkp::LookupRequest listing = req;
  listing.op = Op::index;
  LookupOutcome listed = co_await lookup_index(listing, no_cache, snap, only);
  if (!listed.found()) co_return listed;  // not found, 503, 504: the listing's, as op=get's
  LookupOutcome out = found(listed.cache, listed.upstream, -1);
  out.result = Result::keys;
  for (const auto& e : listed.entries) {
    if (out.keys.size() == kMaxTextGetKeys) break;
    if (e.id.size() != 40) continue;  // a listing without the fingerprint: cannot be fetched
    hkp::LookupRequest one;
    one.op = Op::get;
    one.search.kind = SearchKind::fingerprint;
    one.search.value = e.id;
    LookupOutcome key = co_await lookup_keys(one, no_cache, snap, only);
    if (key.result == Result::unavailable) {
      // The upstreams fail: answer what was found, never wait ten times.
      if (out.keys.empty()) co_return key;
      break;
    }
    for (auto& k : key.keys) out.keys.push_back(std::move(k));
  }
  if (out.keys.empty()) co_return not_found(req.search, CacheResult::miss, -1);
  co_return out;
}

asio::awaitable<LookupOutcome> LookupService::lookup_index(const hkp::LookupRequest& req,
                                                          bool no_cache,
                                                          std::shared_ptr<const Snapshot> snap,
                                                          std::string only) {
  const auto& c = snap->config->cache;
  const hkp::Search& search = req.search;
  const std::int64_t now = now_();
  const std::string qkey = cache::query_key(Op::index, search);
  // Before any read: a listing served as a hit may be reused (ReusedAnswers).
  const std::uint64_t generation = answers_.reused().generation();
  const std::uint64_t queries_generation = answers_.reused().queries_generation();

  // Keys we hold that carry the address are always listed, whatever the upstreams say.
  std::vector<hkp::IndexEntry> local;
  auto add_local = [&] {
    for (auto& k : load_cached(search, true, false).keys) {
      if (k.info) local.push_back(hkp::to_index_entry(*k.info));
    }
  };
  if (search.kind == SearchKind::email) add_local();
  auto respond = [&](std::vector<hkp::IndexEntry> entries, CacheResult how,
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
    if (entries.empty()) return not_found(search, how, age);
    LookupOutcome o = found(how, upstream, age);
    o.result = Result::listing;
    o.entries = std::move(entries);
    o.now = now;
    return o;
  };

  std::optional<cache::QueryRecord> query = store_.get_query(qkey);
  const bool have_answer = query && query->kind == cache::QueryKind::index;
  const std::int64_t age = query ? now - query->fetched_at : 0;
  if (query && !no_cache) {
    if (have_answer && age < seconds(c.fresh_for)) {
      LookupOutcome r = respond(query->entries, CacheResult::hit, query->upstream, age);
      // A listing depends on the query record and on the keys that carry the address: any key
      // or query record change ends its reuse, and so does the end of fresh_for.
      if (r.found()) {
        r.reuse = std::make_shared<const ReusedAnswers::Ticket>(
            ReusedAnswers::Ticket{cache::Fingerprint{}, generation, query->fetched_at,
                                  query->fetched_at + seconds(c.fresh_for), true,
                                  queries_generation});
      }
      co_return r;
    }
    if (query->kind == cache::QueryKind::not_found && age < seconds(c.negative_ttl)) {
      co_return respond({}, CacheResult::negative, "", age);
    }
    if (have_answer && age < seconds(c.fresh_for) + seconds(c.stale_while_revalidate)) {
      revalidate_in_background(true, search, qkey, snap);
      co_return respond(query->entries, CacheResult::stale, query->upstream, age);
    }
  }

  const SharedFetch shared = co_await shared_fetch(true, search, qkey, snap, only.empty(), only);
  const auto& fetched = shared.result;
  if (fetched->found()) {
    co_return respond(fetched->entries, have_answer ? CacheResult::revalidated : CacheResult::miss,
                      fetched->upstream, 0);
  }
  if (fetched->said_not_found()) {
    const bool remembered = shared.settled && fetched->definitive_not_found();
    co_return respond({}, remembered ? CacheResult::negative : CacheResult::miss, "",
                      remembered ? 0 : -1);
  }
  if (have_answer && age <= seconds(c.stale_if_error)) {
    co_return respond(query->entries, CacheResult::stale, query->upstream, age);
  }
  // Every upstream failed and no listing is remembered: answer from what the cache knows (keys
  // whose addresses match), marked stale.
  if (search.kind == SearchKind::text) {
    // A scan of the address index: on the work pool, so a burst of text searches while the
    // upstreams are down cannot stall the network threads' cached answers; when the pool's
    // queue is full the search gets the 503 below.
    auto scan = [this, &search] {
      std::vector<hkp::IndexEntry> entries;
      for (auto& k : load_cached(search, true, false).keys) {
        if (k.info) entries.push_back(hkp::to_index_entry(*k.info));
      }
      return entries;
    };
    std::optional<std::vector<hkp::IndexEntry>> scanned = co_await pool_.try_run(scan);
    if (scanned) local = std::move(*scanned);
  }
  if (!local.empty()) co_return respond({}, CacheResult::stale, "", -1);
  co_return upstreams_failed(search, *fetched, *snap);
}

}  // namespace hkpgw::gateway
