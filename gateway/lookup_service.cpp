#include "gateway/lookup_service.hpp"

#include <boost/asio/async_result.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <set>

#include "gateway/log.hpp"
#include "hkp/index.hpp"
#include "hkp/keyring.hpp"

namespace hkpgw::gateway {

namespace asio = boost::asio;
using hkp::Op;
using hkp::SearchKind;

namespace {

struct CachedKey {
  std::string fingerprint;
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

}  // namespace

// What the cache holds for a search.
struct LookupService::Found {
  std::vector<CachedKey> keys;
  std::int64_t oldest = 0;  // oldest fetched_at among the keys
};

// What the upstreams said.
struct LookupService::Fetched {
  std::string upstream;                  // who answered usefully; "" = nobody
  std::vector<hkp::ParsedKey> keys;      // verified to carry the search (key lookups)
  std::vector<hkp::IndexEntry> entries;  // index lookups
  int asked = 0, failed = 0, timed_out = 0;
  std::string failures;                  // "detail; ..." for the 503/504 message

  bool found() const { return !upstream.empty(); }
  // Every upstream asked answered, and none had it: worth remembering as "not found".
  bool definitive_not_found() const { return !found() && failed == 0; }
  bool all_timed_out() const { return asked > 0 && timed_out == asked; }

  // An answer we cannot use: a 404 (or nothing matching) is an answer; anything else is a
  // failure, logged.
  void record_unusable(const std::string& name, const UpstreamResponse& r) {
    ++asked;
    if (r.outcome == Outcome::not_found) return;
    log::warn("upstream_failed",
              {{"upstream", name}, {"outcome", outcome_name(r.outcome)}, {"detail", r.detail}});
    ++failed;
    if (r.outcome == Outcome::timeout) ++timed_out;
    failures += (failures.empty() ? "" : "; ") + r.detail;
  }
};

LookupService::Found LookupService::load_cached(const hkp::Search& search, bool need_info) const {
  Found f;
  store_.visit(search, [&](const cache::KeyRecordView& v) {
    CachedKey k;
    k.packets = std::string(v.packets);
    if (need_info) {
      k.info = cache::decode_key_info(v.info_bytes);
      if (k.info) k.fingerprint = k.info->fingerprint;
    }
    k.fetched_at = v.fetched_at;
    k.upstream = std::string(v.upstream);
    f.keys.push_back(std::move(k));
  });
  for (const auto& k : f.keys) {
    f.oldest = f.oldest == 0 ? k.fetched_at : std::min(f.oldest, k.fetched_at);
  }
  return f;
}

asio::awaitable<void> LookupService::store_and_wait(cache::WriteBatch batch) {
  // The answer waits for the commit, so a lookup that returned 200 is a cached key: the next
  // request (from any client) is a hit.
  std::error_code ec = co_await asio::async_initiate<decltype(asio::use_awaitable),
                                                     void(std::error_code)>(
      [this](auto handler, cache::WriteBatch b) {
        auto h = std::make_shared<decltype(handler)>(std::move(handler));
        store_.write(std::move(b), [h](std::error_code ec) {
          auto ex = asio::get_associated_executor(*h);
          asio::post(ex, [h, ec]() mutable { std::move (*h)(ec); });
        });
      },
      asio::use_awaitable, std::move(batch));
  if (ec && !write_failure_logged_.exchange(true)) {
    log::error("cache_write_failed",
               {{"error", ec.message()}, {"effect", "answers are served but not cached"}});
  }
}

asio::awaitable<HttpResponse> LookupService::lookup(const hkp::LookupRequest& request,
                                                    bool no_cache, const Snapshot& snapshot) {
  const bool key_shaped =
      request.search.is_key_id() || (request.op == Op::get && request.search.kind == SearchKind::email);
  if (key_shaped) {
    co_return co_await lookup_keys(request, no_cache, snapshot);
  }
  co_return co_await lookup_index(request, no_cache, snapshot);
}

asio::awaitable<LookupService::Fetched> LookupService::fetch_keys(const hkp::Search& search,
                                                                  const Snapshot& snapshot) {
  const auto& cfg = *snapshot.config;
  Fetched out;
  std::string target = "/pks/lookup?op=get&options=mr&search=" + hkp::percent_encode(search.upstream_form());
  if (search.kind == SearchKind::email) target += "&exact=on";
  const UpstreamLimits limits{cfg.upstreams.connect_timeout, cfg.upstreams.request_timeout,
                              cfg.keys.max_key_bytes * 8};
  for (const auto& client : snapshot.upstreams) {
    UpstreamResponse r = co_await client->get(target, limits);
    if (r.outcome == Outcome::ok) {
      auto parsed = hkp::parse_keys(r.body, cfg.keys);
      if (parsed.secret_material) {
        r.outcome = Outcome::bad_response;
        r.detail = client->name() + " sent secret key material";
      } else {
        for (auto& k : parsed.keys) {
          if (k.info.matches(search)) out.keys.push_back(std::move(k));
        }
        if (!out.keys.empty()) {
          out.upstream = client->name();
          co_return out;
        }
        // Answered, but nothing in the answer carries what we asked for: never cached.
        log::warn("upstream_key_mismatch",
                  {{"upstream", client->name()},
                   {"search", search.upstream_form()},
                   {"keys_in_answer", std::to_string(parsed.keys.size())}});
        r.outcome = Outcome::not_found;
      }
    }
    out.record_unusable(client->name(), r);
  }
  co_return out;
}

asio::awaitable<LookupService::Fetched> LookupService::fetch_index(const hkp::Search& search,
                                                                   const Snapshot& snapshot) {
  const auto& cfg = *snapshot.config;
  Fetched out;
  const std::string target = "/pks/lookup?op=index&options=mr&fingerprint=on&search=" +
                             hkp::percent_encode(search.value);
  const UpstreamLimits limits{cfg.upstreams.connect_timeout, cfg.upstreams.request_timeout,
                              cfg.keys.max_key_bytes * 8};
  for (const auto& client : snapshot.upstreams) {
    UpstreamResponse r = co_await client->get(target, limits);
    if (r.outcome == Outcome::ok) {
      auto entries = hkp::parse_mr_index(r.body);
      if (entries && !entries->empty()) {
        out.upstream = client->name();
        out.entries = std::move(*entries);
        co_return out;
      }
      if (entries) {
        r.outcome = Outcome::not_found;  // an empty listing is "nothing found"
      } else {
        r.outcome = Outcome::bad_response;
        r.detail = client->name() + ": " + entries.error().message();
      }
    }
    out.record_unusable(client->name(), r);
  }
  co_return out;
}

namespace {

HttpResponse upstreams_failed(const hkp::Search& s, bool timeouts, const std::string& failures) {
  if (timeouts) {
    return text_response(504, Problem{504, GPG_ERR_TIMEOUT,
                                      "no upstream answered in time for " + s.upstream_form()}
                                  .message());
  }
  return text_response(503, Problem{503, GPG_ERR_NO_KEYSERVER,
                                    "every upstream failed for " + s.upstream_form() +
                                        (failures.empty() ? "" : " (" + failures + ")")}
                                .message());
}

}  // namespace

asio::awaitable<HttpResponse> LookupService::lookup_keys(const hkp::LookupRequest& req,
                                                         bool no_cache, const Snapshot& snap) {
  const auto& cfg = *snap.config;
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

  auto serve_cached = [&](std::string_view how, std::int64_t since) {
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
  if (!found.keys.empty() && fetched_at != 0 &&
      (cache_only || (now - fetched_at < seconds(cfg.cache.fresh_for) && !no_cache))) {
    co_return serve_cached("hit", fetched_at);
  }
  if (found.keys.empty() && query && query->kind == cache::QueryKind::not_found && !no_cache &&
      now - query->fetched_at < seconds(cfg.cache.negative_ttl)) {
    HttpResponse r = not_found(search);
    decorate(r, req, "negative", "", now - query->fetched_at);
    co_return r;
  }
  if (cache_only) {  // never asked upstream; cached keys were served above
    HttpResponse r = not_found(search);
    decorate(r, req, "miss", "", -1);
    co_return r;
  }

  Fetched fetched = co_await fetch_keys(search, snap);
  if (fetched.found()) {
    cache::WriteBatch batch;
    for (const auto& k : fetched.keys) batch.keys.push_back({k, now, fetched.upstream});
    if (search.kind == SearchKind::email) {
      cache::QueryRecord q{now, fetched.upstream, cache::QueryKind::fingerprints, {}, {}};
      for (const auto& k : fetched.keys) q.fingerprints.push_back(k.info.fingerprint);
      batch.queries.emplace_back(qkey, std::move(q));
    }
    co_await store_and_wait(std::move(batch));
    // The answer: what the upstream sent, plus any other cached key carrying the address.
    std::set<std::string> fresh;
    for (const auto& k : fetched.keys) fresh.insert(k.info.fingerprint);
    HttpResponse r;
    if (want_index) {
      std::vector<hkp::IndexEntry> entries;
      for (const auto& k : fetched.keys) entries.push_back(hkp::to_index_entry(k.info));
      r = index_response(req, std::move(entries), now);
    } else {
      std::vector<const std::string*> packets;
      for (const auto& k : fetched.keys) packets.push_back(&k.packets);
      for (const auto& k : found.keys) {
        if (search.kind == SearchKind::email && !fresh.contains(k.fingerprint)) {
          packets.push_back(&k.packets);
        }
      }
      r = keys_response(packets);
    }
    decorate(r, req, "miss", fetched.upstream, 0);
    co_return r;
  }

  // Nothing usable from upstream. The cache is the organisation's copy of the key world: a key
  // we hold (uploaded here, or dropped upstream) is still served, as stale.
  if (!found.keys.empty() &&
      (fetched.definitive_not_found() || now - found.oldest <= seconds(cfg.cache.stale_if_error))) {
    co_return serve_cached("stale", found.oldest);
  }
  if (fetched.definitive_not_found()) {
    cache::WriteBatch batch;
    batch.queries.emplace_back(qkey, cache::QueryRecord{now, "", cache::QueryKind::not_found, {}, {}});
    co_await store_and_wait(std::move(batch));
    HttpResponse r = not_found(search);
    decorate(r, req, "miss", "", -1);
    co_return r;
  }
  HttpResponse r = upstreams_failed(search, fetched.all_timed_out(), fetched.failures);
  decorate(r, req, "miss", "", -1);
  co_return r;
}

asio::awaitable<HttpResponse> LookupService::lookup_index(const hkp::LookupRequest& req,
                                                          bool no_cache, const Snapshot& snap) {
  const auto& cfg = *snap.config;
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
  if (query && !no_cache) {
    const std::int64_t age = now - query->fetched_at;
    if (query->kind == cache::QueryKind::index && age < seconds(cfg.cache.fresh_for)) {
      co_return respond(query->entries, "hit", query->upstream, age);
    }
    if (query->kind == cache::QueryKind::not_found && age < seconds(cfg.cache.negative_ttl)) {
      co_return respond({}, "negative", "", age);
    }
  }

  Fetched fetched = co_await fetch_index(search, snap);
  if (fetched.found()) {
    cache::WriteBatch batch;
    batch.queries.emplace_back(
        qkey, cache::QueryRecord{now, fetched.upstream, cache::QueryKind::index, {}, fetched.entries});
    co_await store_and_wait(std::move(batch));
    co_return respond(std::move(fetched.entries), "miss", fetched.upstream, 0);
  }
  if (fetched.definitive_not_found()) {
    cache::WriteBatch batch;
    batch.queries.emplace_back(qkey, cache::QueryRecord{now, "", cache::QueryKind::not_found, {}, {}});
    co_await store_and_wait(std::move(batch));
    co_return respond({}, "miss", "", -1);
  }
  if (query && query->kind == cache::QueryKind::index &&
      now - query->fetched_at <= seconds(cfg.cache.stale_if_error)) {
    co_return respond(query->entries, "stale", query->upstream, now - query->fetched_at);
  }
  if (!local.empty()) {
    co_return respond({}, "stale", "", -1);
  }
  HttpResponse r = upstreams_failed(search, fetched.all_timed_out(), fetched.failures);
  decorate(r, req, "miss", "", -1);
  co_return r;
}

}  // namespace hkpgw::gateway
