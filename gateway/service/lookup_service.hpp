// The lookup policy (ARCHITECTURE.md, "Life of a lookup"). A fresh cached answer is served at
// once (hit). Past fresh_for but within stale_while_revalidate it is still served at once (stale)
// and refreshed in the background, once however many requests see it. Past that window it is
// re-fetched before answering (revalidated); if every upstream fails, a copy within
// stale_if_error is served (stale). Nothing cached: the upstreams are asked (miss) through the
// fleet's order, health and hedging, and concurrent identical misses share one fetch
// (UpstreamFetch does the asking, verifying, merging and storing). Not found anywhere: 404,
// remembered for negative_ttl (negative). Upstreams failing with nothing to serve: 503, or 504
// when they timed out. Never 502 (dirmngr marks a host dead on a 502).
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "cache/store.hpp"
#include "config/config.hpp"
#include "gateway/observe/clock.hpp"
#include "gateway/service/coalescer.hpp"
#include "gateway/service/deps.hpp"
#include "gateway/service/outcome.hpp"
#include "gateway/service/upstream_fetch.hpp"
#include "gateway/upstream/fleet.hpp"
#include "hkp/lookup.hpp"

namespace hkpgw::gateway {

class LookupService {
 public:
  // `background` runs revalidations that outlive the request that started them.
  LookupService(ServiceDeps deps, boost::asio::any_io_executor background)
      : store_(deps.store),
        answers_(deps.answers),
        pool_(deps.pool),
        now_(deps.now),
        background_(std::move(background)),
        fetch_(deps) {}

  // Carries out one parsed lookup (any op but stats), from any front, which renders the
  // outcome. Applies the lookup policy: 32-bit key IDs per keys.short_key_ids (refused under
  // "reject"), the client's no-cache only with server.honor_client_no_cache. Never throws for
  // client or upstream input. `only`: a miss asks that upstream alone (a per-upstream route,
  // /u/<name>/...: the caller checked the name); its "not found" is then not remembered, since
  // the others were not asked.
  boost::asio::awaitable<LookupOutcome> lookup(const hkp::LookupRequest& request,
                                              bool client_no_cache,
                                              std::shared_ptr<const Snapshot> snapshot,
                                              std::string only = {});

 private:
  struct Found;
  struct KeyLookup;
  boost::asio::awaitable<LookupOutcome> lookup_keys(const hkp::LookupRequest& request,
                                                   bool no_cache,
                                                   std::shared_ptr<const Snapshot> snapshot,
                                                   std::string only);
  // op=get with free text, as SKS and onak answer it (@openpgp/hkp-client's lookup({query})
  // sends it): the listing op=index gives, then its first kMaxTextGetKeys keys, each as op=get
  // by fingerprint answers it (cache first), in one answer; the first key the upstreams fail
  // to give ends the list (one request never waits for ten failures). Charged to the search
  // budget.
  static constexpr std::size_t kMaxTextGetKeys = 10;
  boost::asio::awaitable<LookupOutcome> lookup_text_keys(const hkp::LookupRequest& request,
                                                        bool no_cache,
                                                        std::shared_ptr<const Snapshot> snapshot,
                                                        std::string only);
  boost::asio::awaitable<LookupOutcome> lookup_index(const hkp::LookupRequest& request,
                                                    bool no_cache,
                                                    std::shared_ptr<const Snapshot> snapshot,
                                                    std::string only);
  // What the cache alone can answer for a key lookup (hit, negative, stale), or nullopt: ask.
  std::optional<LookupOutcome> keys_from_cache(const KeyLookup& l,
                                              std::shared_ptr<const Snapshot> snapshot);
  using SharedFetch = Coalescer<Fetched>::Shared;
  LookupOutcome keys_after_fetch(const KeyLookup& l, const SharedFetch& fetched,
                                const Snapshot& snapshot);
  // `remember_not_found`, `only`: see UpstreamFetch::keys (a routed fetch coalesces apart from
  // the others').
  boost::asio::awaitable<SharedFetch> shared_fetch(bool index, const hkp::Search& search,
                                                   const std::string& qkey,
                                                   std::shared_ptr<const Snapshot> snapshot,
                                                   bool remember_not_found,
                                                   const std::string& only = {});
  void revalidate_in_background(bool index, const hkp::Search& search, const std::string& qkey,
                                std::shared_ptr<const Snapshot> snapshot);
  // The cached keys of a search: their infos (listings, merging) and packets (key answers).
  Found load_cached(const hkp::Search& search, bool need_info, bool need_packets) const;
  void note_served(const Found& found) const;

  struct Served;
  // A key-shaped lookup's answer into `o`: the keys themselves (op=get) or their listing.
  void answer_with(const hkp::LookupRequest& req, std::vector<Served> keys,
                   LookupOutcome& o) const;

  cache::Store& store_;
  AnswerCache& answers_;
  WorkPool& pool_;
  Clock now_;
  boost::asio::any_io_executor background_;
  UpstreamFetch fetch_;
  Coalescer<Fetched> keys_, indexes_;
};

}  // namespace hkpgw::gateway
