// Key submission (POST /pks/add, docs/contract.md and docs/clients.md). A submission is decoded however
// the client encoded it, refused whole when it holds any secret key material (422: nothing is
// stored or forwarded) or a key that does not hold up (422), validated and cleaned like every key,
// merged into the cache (a new subkey or revocation is visible to the next lookup), and then
// forwarded per `upstreams.forward_adds`: "default" (the default upstream, falling back along
// the try order while upstreams are down), "all" (every upstream at once) or "none". A forward
// that fails is kept in the cache's outbox and retried with backoff (1 s, doubling, at most
// 1 h) by a background coroutine, across restarts; so is the push of every accepted key to each
// other replica in [cluster] peers (gateway/net/peer_client.hpp), whatever forward_adds says. Bare revocation
// certificates are merged into the key they name, fetched first when it is not cached. Each
// front words the outcome (HKP: 200 with one line per key, which is all gpg accepts).
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "cache/merge.hpp"
#include "cache/store.hpp"
#include "hkp/keyring.hpp"
#include "hkp/submission.hpp"
#include "gateway/net/http_message.hpp"
#include "gateway/service/deps.hpp"
#include "gateway/service/outcome.hpp"
#include "gateway/service/replicas.hpp"
#include "gateway/service/upstream_fetch.hpp"
#include "gateway/upstream/fleet.hpp"

namespace hkpgw::gateway {


// Seconds until the next attempt at a forward that failed `attempts` times: 1, 2, 4, ... at most
// one hour.
std::int64_t forward_backoff(std::uint32_t attempts);

class AddService {
 public:
  // A submission finding the work pool's queue full gets 503. What cleaning drops from
  // submissions goes to the tally with the source "upload".
  explicit AddService(ServiceDeps deps) : d_(deps), fetch_(deps) {}

  // Every key accepted from a client is also queued for each of these replicas and pushed by
  // the retrier (the cluster module; none: no pushes). Set before the first request.
  void publish_to(Replicas* replicas) { replicas_ = replicas; }

  // What became of one accepted key, for each front to word its answer.
  struct AddedKey {
    std::string fingerprint;
    cache::Change change;
    std::vector<std::string> forwarded, refused, queued;  // upstream names
    std::vector<std::pair<std::string, bool>> addresses;  // its user IDs' (address, revoked)
    // What each upstream that took it answered (name, body; at most 64 KiB each), in try order:
    // a VKS upstream's token and address states, for the VKS front to pass back.
    std::vector<std::pair<std::string, std::string>> replies;
  };
  // The refusal (for the front to word), or the accepted keys.
  using Submitted = std::variant<Refusal, std::vector<AddedKey>>;
  // Any front's submission, decoded: verified, cleaned, merged, stored, forwarded, and queued
  // for every [cluster] peer. `from_replica`: a peer's push (POST /cluster/keys), verified,
  // cleaned, merged and stored like any, but neither forwarded nor pushed on.
  boost::asio::awaitable<Submitted> submit(const hkp::Submission& submission,
                                           const HttpRequest& request,
                                           std::shared_ptr<const Snapshot> snapshot,
                                           bool from_replica = false);

  // The outbox retrier: every 500 ms, sends what is due. Runs until stop().
  void start(boost::asio::any_io_executor executor, SnapshotSource snapshots);
  void stop() { running_ = false; }

 private:
  struct Forwarded;
  // One accepted key of a submission and what it changes in the cache.
  struct Item {
    hkp::ParsedKey key;
    cache::Change change;
  };
  // What the pool made of a submission: its accepted keys, or the refusal to answer with.
  using Prepared = std::variant<Refusal, std::vector<Item>>;
  // Parse, verify, merge with the cached copies (runs on the pool; reads the store).
  // `blocked`: keys the operator removed, refused whole (cache/blocklist.hpp).
  // `missing`: the key IDs of bare revocations whose key is not cached here (then refused).
  Prepared prepare(const hkp::Submission& sub, const config::Config& cfg,
                   const cache::Blocklist& blocked, const std::string& peer,
                   std::vector<std::string>& missing);
  // No key in the submission: bare revocation certificates for keys we hold (`missing`: those
  // we do not).
  Prepared prepare_revocations(const hkp::Submission& sub, const config::Config& cfg,
                               bool not_openpgp, std::vector<std::string>& missing);
  // Forwards each accepted key per forward_adds, queues what failed.
  boost::asio::awaitable<std::vector<AddedKey>> forward_all(const std::vector<Item>& items,
                                                            const HttpRequest& req,
                                                            std::shared_ptr<const Snapshot> snap);
  // Forwards per forward_adds, or only to `only_upstream` when it is not empty (an outbox retry).
  boost::asio::awaitable<Forwarded> forward(const std::string& fingerprint_hex,
                                            const std::string& packets, const Snapshot& snap,
                                            const std::string& only_upstream);
  boost::asio::awaitable<void> retry_due(std::shared_ptr<const Snapshot> snap);

  ServiceDeps d_;
  // A bare revocation for a key not cached here: the key is fetched first (as a lookup would:
  // verified, cleaned, stored), so the revocation is not refused by the replica that happened
  // to receive it.
  UpstreamFetch fetch_;
  Replicas* replicas_ = nullptr;
  std::atomic<bool> running_{false};
  std::function<void()> wake_retrier_;  // set by start(), before any request is served
};

}  // namespace hkpgw::gateway
