#include "gateway/service/lookup_service.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/strand.hpp>
#include <set>

#include "gateway/observe/log.hpp"
#include "gateway/service/work_pool.hpp"
#include "hkp/armor.hpp"
#include "hkp/v2.hpp"
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

HttpResponse index_response(const hkp::LookupRequest& req, std::vector<hkp::IndexEntry> entries,
                            std::int64_t now) {
  HttpResponse r;
  if (req.v2) {
    r.content_type = "application/json";
    r.body = hkp::format_json_index(entries, now);
  } else if (req.machine_readable) {
    r.body = hkp::format_mr_index(entries, now);
  } else {
    r.content_type = "text/html; charset=utf-8";
    r.body = hkp::format_html_index(entries, req.search.value, req.op == Op::vindex, now);
  }
  return r;
}

HttpResponse not_found(const hkp::Search& s) {
  // "No keys found" is SKS's wording, which OpenKeychain looks for to tell "no such key" from
  // "no such keyserver".
  return text_response(404, Problem{404, GPG_ERR_NO_DATA, "No keys found for " + s.upstream_form()}
                                .message());
}

// How long a client should wait before asking again: about the time probes need to bring an
// upstream back.
std::string retry_after(const config::UpstreamsConfig& u) {
  const auto back = std::chrono::duration_cast<std::chrono::seconds>(u.probe_interval).count() *
                    static_cast<long long>(u.healthy_threshold);
  return std::to_string(std::clamp<long long>(back, 5, 300));
}

HttpResponse upstreams_failed(const hkp::Search& s, const Fetched& f, const Snapshot& snap) {
  HttpResponse r;
  if (f.panic) {
    // Known before asking: say so, rather than the last failure's detail.
    r = text_response(503, Problem{503, GPG_ERR_NO_KEYSERVER,
                                   "every upstream is unreachable (all " +
                                       std::to_string(snap.upstreams.size()) +
                                       " marked unhealthy by probes and failed requests); " +
                                       s.upstream_form() + " is not cached here" +
                                       (f.asked == 0 && !f.failures.empty() ? "; " + f.failures
                                                                           : std::string())}
                               .message());
  } else if (f.all_timed_out()) {
    r = text_response(504, Problem{504, GPG_ERR_TIMEOUT,
                                   "no upstream answered in time for " + s.upstream_form()}
                               .message());
  } else {
    r = text_response(503, Problem{503, GPG_ERR_NO_KEYSERVER,
                                   "every upstream failed for " + s.upstream_form() +
                                       (f.failures.empty() ? "" : " (" + f.failures + ")")}
                               .message());
  }
  r.set("Retry-After", retry_after(snap.config->upstreams));
  return r;
}

// The headers and access-log fields every lookup answer carries.
HttpResponse decorate(HttpResponse r, const hkp::LookupRequest& req, CacheResult cache,
                      std::string_view upstream, std::int64_t age) {
  r.set("X-HKP-Cache", std::string(cache_result_name(cache)));
  if (age >= 0) r.set("Age", std::to_string(age));
  r.log_op = hkp::op_name(req.op);
  r.log_kind = hkp::kind_name(req.search.kind);
  r.log_cache = cache;
  r.log_upstream = upstream.empty() ? "-" : std::string(upstream);
  return r;
}

}  // namespace

// One key of an answer, cached or just fetched.
struct LookupService::Served {
  const std::string* packets;
  const hkp::KeyInfo* info;  // null when not loaded (key answers do not need it)
  std::optional<cache::Fingerprint> id;
  std::shared_ptr<const AnswerCache::Prepared> prepared;  // a cached key's, when loaded
};

HttpResponse LookupService::render(const hkp::LookupRequest& req, const std::vector<Served>& keys,
                                   std::int64_t now) const {
  if (req.op != Op::get) {
    std::vector<hkp::IndexEntry> entries;
    for (const auto& k : keys) {
      if (k.info) entries.push_back(hkp::to_index_entry(*k.info));
    }
    return index_response(req, std::move(entries), now);
  }
  HttpResponse r;
  r.content_type = req.v2 ? hkp::kV2KeysType : std::string_view("application/pgp-keys");
  if (keys.size() == 1 && (keys.front().prepared || keys.front().id)) {  // armored once, shared
    const Served& k = keys.front();
    auto p = k.prepared ? k.prepared : answers_.prepared(*k.id, *k.packets);
    const std::string* body = req.v2 ? &p->packets : &p->armor;  // v2: the binary bundle
    r.shared_body = std::shared_ptr<const std::string>(std::move(p), body);
    return r;
  }
  std::string all;
  for (const auto& k : keys) all += *k.packets;
  r.body = req.v2 ? std::move(all) : hkp::armor_public_keys(all);
  return r;
}

// What the cache holds for a search.
struct LookupService::Found {
  std::vector<CachedKey> keys;
  std::int64_t oldest = 0;  // oldest fetched_at among the keys

  std::vector<Served> served() const {
    std::vector<Served> out;
    for (const auto& k : keys) {
      out.push_back({k.key ? &k.key->packets : nullptr, k.info ? &*k.info : nullptr, k.id, k.key});
    }
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

asio::awaitable<HttpResponse> LookupService::lookup(const hkp::LookupRequest& request,
                                                    bool client_no_cache,
                                                    std::shared_ptr<const Snapshot> snapshot,
                                                    std::string only) {
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
  if (request.op == Op::get && request.search.kind == SearchKind::text) {
    co_return co_await lookup_text_keys(request, no_cache, std::move(snapshot), std::move(only));
  }
  const bool key_shaped = request.search.is_key_id() ||
                          (request.op == Op::get && request.search.kind == SearchKind::email);
  if (key_shaped) {
    co_return co_await lookup_keys(request, no_cache, std::move(snapshot), std::move(only));
  }
  co_return co_await lookup_index(request, no_cache, std::move(snapshot), std::move(only));
}

asio::awaitable<HttpResponse> LookupService::lookup_keys(const hkp::LookupRequest& req,
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

std::optional<HttpResponse> LookupService::keys_from_cache(const KeyLookup& l,
                                                           std::shared_ptr<const Snapshot> snap) {
  const auto& c = snap->config->cache;
  const hkp::Search& search = l.req.search;
  auto serve = [&](CacheResult how) {
    note_served(l.found);
    return decorate(render(l.req, l.found.served(), l.now), l.req, how,
                    l.found.keys.front().upstream, l.age());
  };
  const bool cache_only = search.kind == SearchKind::short_keyid;  // never asked upstream
  if (l.have_answer() && (cache_only || (l.age() < seconds(c.fresh_for) && !l.no_cache))) {
    HttpResponse r = serve(CacheResult::hit);
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
    return decorate(not_found(search), l.req, CacheResult::negative, "", l.now - l.query->fetched_at);
  }
  if (cache_only) return decorate(not_found(search), l.req, CacheResult::miss, "", -1);
  if (l.have_answer() && !l.no_cache &&
      l.age() < seconds(c.fresh_for) + seconds(c.stale_while_revalidate)) {
    const std::string qkey = l.qkey.empty() ? cache::query_key(Op::get, search) : l.qkey;
    revalidate_in_background(false, search, qkey, snap);
    return serve(CacheResult::stale);
  }
  return std::nullopt;
}

HttpResponse LookupService::keys_after_fetch(const KeyLookup& l, const SharedFetch& shared,
                                             const Snapshot& snap) {
  const hkp::Search& search = l.req.search;
  const Fetched& fetched = *shared.result;
  if (fetched.found()) {
    // The answer: what the upstreams sent (merged with our copy), plus any other cached key
    // carrying the address.
    std::vector<Served> keys;
    std::set<std::string> fresh;
    for (const auto& k : fetched.keys) {
      keys.push_back({&k.packets, &k.info, cache::Fingerprint::from_hex(k.info.fingerprint), nullptr});
      fresh.insert(k.info.fingerprint);
    }
    if (search.kind == SearchKind::email) {
      for (const auto& k : l.found.keys) {
        if (!fresh.contains(k.fingerprint)) {
          keys.push_back({k.key ? &k.key->packets : nullptr, k.info ? &*k.info : nullptr, k.id, k.key});
        }
      }
    }
    return decorate(render(l.req, keys, l.now), l.req,
                    l.have_answer() ? CacheResult::revalidated : CacheResult::miss,
                    fetched.upstream, 0);
  }
  // Nothing usable from upstream. The cache is the organisation's copy of the key world: a key
  // we hold (uploaded here, or dropped upstream) is still served, as stale.
  const auto& c = snap.config->cache;
  if (!l.found.keys.empty() && (fetched.definitive_not_found() ||
                                l.now - l.found.oldest <= seconds(c.stale_if_error))) {
    note_served(l.found);
    return decorate(render(l.req, l.found.served(), l.now), l.req, CacheResult::stale,
                    l.found.keys.front().upstream, l.now - l.found.oldest);
  }
  if (fetched.said_not_found()) {
    // Settled: a "not found" fetched a moment ago and being remembered, so not asked again.
    const bool remembered = shared.settled && fetched.definitive_not_found();
    return decorate(not_found(search), l.req,
                    remembered ? CacheResult::negative : CacheResult::miss, "", remembered ? 0 : -1);
  }
  return decorate(upstreams_failed(search, fetched, snap), l.req, CacheResult::miss, "", -1);
}

asio::awaitable<HttpResponse> LookupService::lookup_text_keys(const hkp::LookupRequest& req,
                                                              bool no_cache,
                                                              std::shared_ptr<const Snapshot> snap,
                                                              std::string only) {
  hkp::LookupRequest listing = req;
  listing.op = Op::index;
  listing.machine_readable = true;
  listing.v2 = false;
  HttpResponse listed = co_await lookup_index(listing, no_cache, snap, only);
  if (listed.status != 200) {  // 404 ("No keys found"), 503, 504: the listing's, as op=get's
    listed.log_op = hkp::op_name(req.op);
    co_return listed;
  }
  std::vector<hkp::IndexEntry> entries;
  if (auto parsed = hkp::parse_mr_index(listed.payload())) entries = std::move(*parsed);
  std::string packets;
  std::size_t taken = 0;
  for (const auto& e : entries) {
    if (taken == kMaxTextGetKeys) break;
    if (e.id.size() != 40) continue;  // a listing without the fingerprint: cannot be fetched
    hkp::LookupRequest one;
    one.op = Op::get;
    one.search.kind = SearchKind::fingerprint;
    one.search.value = e.id;
    one.machine_readable = true;
    HttpResponse key = co_await lookup_keys(one, no_cache, snap, only);
    if (key.status >= 500) {  // the upstreams fail: answer what was found, never wait ten times
      if (taken == 0) {
        key.log_op = hkp::op_name(req.op);
        key.log_kind = hkp::kind_name(req.search.kind);
        co_return key;
      }
      break;
    }
    if (key.status != 200) continue;
    auto binary = hkp::dearmor(key.payload());
    if (!binary) continue;
    packets += binary->binary;
    ++taken;
  }
  if (taken == 0) co_return decorate(not_found(req.search), req, CacheResult::miss, "", -1);
  HttpResponse r;
  r.content_type = req.v2 ? hkp::kV2KeysType : std::string_view("application/pgp-keys");
  r.body = req.v2 ? std::move(packets) : hkp::armor_public_keys(packets);
  co_return decorate(std::move(r), req, listed.log_cache, listed.log_upstream, -1);
}

asio::awaitable<HttpResponse> LookupService::lookup_index(const hkp::LookupRequest& req,
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
    HttpResponse r = entries.empty() ? not_found(search) : index_response(req, std::move(entries), now);
    return decorate(std::move(r), req, how, upstream, age);
  };

  std::optional<cache::QueryRecord> query = store_.get_query(qkey);
  const bool have_answer = query && query->kind == cache::QueryKind::index;
  const std::int64_t age = query ? now - query->fetched_at : 0;
  if (query && !no_cache) {
    if (have_answer && age < seconds(c.fresh_for)) {
      HttpResponse r = respond(query->entries, CacheResult::hit, query->upstream, age);
      // A listing depends on the query record and on the keys that carry the address: any key
      // or query record change ends its reuse, and so does the end of fresh_for.
      if (r.status == 200) {
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
  co_return decorate(upstreams_failed(search, *fetched, *snap), req, CacheResult::miss, "", -1);
}

}  // namespace hkpgw::gateway
