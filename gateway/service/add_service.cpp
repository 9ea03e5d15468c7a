#include "gateway/service/add_service.hpp"

#include <algorithm>
#include <map>
#include <optional>

#include "cache/merge.hpp"
#include "gateway/observe/log.hpp"
#include "gateway/service/cache_writer.hpp"
#include "gateway/service/periodic.hpp"
#include "gateway/service/work_pool.hpp"
#include "hkp/keyring.hpp"
#include "hkp/submission.hpp"

namespace hkpgw::gateway {

namespace asio = boost::asio;

namespace {


constexpr auto kRetryTick = std::chrono::milliseconds(500);
constexpr std::int64_t kMaxBackoff = 3600;
// One submission may not turn into an unbounded number of upstream POSTs (gpg sends one key per
// request; a keyring upload is what `cache import` is for).
constexpr std::size_t kMaxKeysPerSubmission = 100;
// The outbox is bounded too: past this, accepted keys are kept here but not queued.
constexpr std::uint64_t kMaxQueued = 10000;

Refusal refuse(unsigned status, gpg_err_code_t code, const std::string& why) {
  return Refusal{Problem{status, code, why}, std::chrono::seconds(0)};
}

std::string join(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : ",") + s;
  return out;
}

// The keys_rejected_total reason of a refused key.
const char* gpg_err_code_to_reason(gpg_err_code_t code) {
  switch (code) {
    case GPG_ERR_BAD_SIGNATURE: return "no_valid_self_signature";
    case GPG_ERR_TOO_LARGE: return "too_large";
    case GPG_ERR_NO_PUBKEY: return "subkey_without_primary";
    case GPG_ERR_UNKNOWN_VERSION: return "unsupported_version";
    case GPG_ERR_BAD_PUBKEY: return "absurd_key_parameters";
    default: return "unusable_key";
  }
}

}  // namespace

std::int64_t forward_backoff(std::uint32_t attempts) {
  return std::min<std::int64_t>(kMaxBackoff, std::int64_t{1} << std::min<std::uint32_t>(attempts, 12));
}

// Where a key went.
struct AddService::Forwarded {
  std::vector<std::string> to;       // accepted (200)
  std::vector<std::pair<std::string, std::string>> replies;  // (name, body) of each in `to`
  std::vector<std::string> refused;  // "name (HTTP 4xx)": the upstream will not take it
  std::vector<std::pair<std::string, std::string>> failed;  // (name, reason): retried later
};

asio::awaitable<AddService::Forwarded> AddService::forward(const std::string& fpr,
                                                           const std::string& packets,
                                                           const Snapshot& snap,
                                                           const std::string& only_upstream) {
  Forwarded out;
  const auto& cfg = snap.config->upstreams;
  // Named operands: no temporaries across a co_await (GCC 12, ARCHITECTURE.md).
  UpstreamQuery query{UpstreamQuery::What::submit, {}, packets};
  std::vector<std::shared_ptr<Upstream>> targets;
  bool all = false;
  if (!only_upstream.empty()) {  // a retry from the outbox
    if (auto u = snap.find(only_upstream)) targets.push_back(std::move(u));
  } else if (cfg.forward_adds == config::ForwardAdds::all) {
    for (const auto& u : snap.upstreams) {
      if (u->answers(query)) targets.push_back(u);  // the keyservers: WKD takes no uploads
    }
    all = true;
  } else if (cfg.forward_adds == config::ForwardAdds::default_upstream) {
    targets = d_.fleet.candidates(snap, query);
  }
  if (targets.empty()) co_return out;
  auto judge = [&](Upstream& upstream, UpstreamAnswer& r) -> asio::awaitable<Verdict> {
    if (r.outcome == Outcome::ok) {
      out.to.push_back(upstream.name());
      out.replies.emplace_back(upstream.name(), std::move(r.body));
      co_return all ? Verdict::go_on : Verdict::done;
    }
    if (r.status >= 400 && r.status < 500) {  // it answered, and said no: not retried
      out.refused.push_back(upstream.name() + " (HTTP " + std::to_string(r.status) + ")");
      log::warn("key_forward_refused", {{"upstream", upstream.name()},
                                        {"fingerprint", fpr},
                                        {"status", std::to_string(r.status)}});
      co_return all ? Verdict::go_on : Verdict::done;
    }
    out.failed.emplace_back(upstream.name(), r.detail.empty() ? outcome_name(r.outcome) : r.detail);
    co_return Verdict::go_on;
  };
  const UpstreamLimits limits{cfg.connect_timeout, cfg.request_timeout, 64 << 10};
  co_await d_.fleet.fan_out(snap, std::move(targets), std::move(query), limits, all, judge);
  // Answers arrive in any order; report them in try order.
  auto rank = [&](const std::string& name) { return snap.rank(name); };
  std::sort(out.to.begin(), out.to.end(),
            [&](const auto& a, const auto& b) { return rank(a) < rank(b); });
  std::sort(out.replies.begin(), out.replies.end(),
            [&](const auto& a, const auto& b) { return rank(a.first) < rank(b.first); });
  std::sort(out.failed.begin(), out.failed.end(),
            [&](const auto& a, const auto& b) { return rank(a.first) < rank(b.first); });
  co_return out;
}

AddService::Prepared AddService::prepare(const hkp::Submission& sub, const config::Config& cfg,
                                        const cache::Blocklist& blocked, const std::string& peer,
                                        std::vector<std::string>& missing) {
  auto parsed = hkp::parse_keys(sub.keytext, cfg.keys, kMaxKeysPerSubmission,
                                hkp::VerifyBudget::all_or_nothing);
  if (parsed.secret_material) {
    d_.metrics.keys_rejected("secret_key_material");
    log::warn("key_add_refused", {{"peer", peer}, {"reason", "secret_key_material"}});
    return refuse(422, GPG_ERR_FORBIDDEN,
                  "secret key material is never accepted: nothing of this submission was "
                  "stored or forwarded (send the public key: gpg --export)");
  }
  if (parsed.bad_input) {
    return refuse(parsed.bad_input->status, parsed.bad_input->code, parsed.bad_input->detail);
  }
  if (parsed.key_count > kMaxKeysPerSubmission) {
    return refuse(413, GPG_ERR_TOO_LARGE,
                  "at least " + std::to_string(parsed.key_count) +
                      " keys in one submission; at most " + std::to_string(kMaxKeysPerSubmission) +
                      " (import keyrings with hkp-gateway cache import)");
  }
  // What cleaning dropped is counted whether or not the submission is accepted.
  d_.tally.add(parsed.dropped, "upload");
  if (parsed.over_budget_keys) {
    d_.metrics.keys_rejected("verification_budget");
    log::warn("key_add_refused", {{"peer", peer},
                                  {"reason", "verification_budget"},
                                  {"estimated_ms", std::to_string(parsed.verify_cost_us / 1000)}});
    return refuse(413, GPG_ERR_TOO_LARGE,
                  "verifying this submission would take about " +
                      std::to_string(parsed.verify_cost_us / 1000) +
                      " ms of signature verification, over the " +
                      std::to_string(cfg.keys.verify_budget_per_submission.count()) +
                      " ms one submission may cost: send fewer keys at a time");
  }
  // A key refused whole may still revoke the cached copy: that much of it is applied.
  cache::apply_refused_revocations(d_.store, parsed, cfg.keys);
  for (const auto& r : parsed.rejected) {
    d_.metrics.keys_rejected(gpg_err_code_to_reason(r.code));
    log::warn("key_add_refused", {{"peer", peer}, {"fingerprint", r.fingerprint}, {"reason", r.reason}});
    return refuse(422, r.code,
                  "key " + (r.fingerprint.empty() ? std::string("?") : r.fingerprint) + ": " +
                      r.reason + "; nothing of this submission was stored");
  }

  for (const auto& k : parsed.keys) {
    if (!blocked.contains_hex(k.info.fingerprint)) continue;
    d_.metrics.keys_rejected("blocked");
    log::warn("key_add_refused", {{"peer", peer}, {"fingerprint", k.info.fingerprint},
                                  {"reason", "blocked"}});
    return refuse(403, GPG_ERR_FORBIDDEN,
                  "key " + k.info.fingerprint +
                      " is blocked on this gateway: nothing of this submission was stored or "
                      "forwarded");
  }
  if (parsed.keys.empty()) return prepare_revocations(sub, cfg, parsed.not_openpgp, missing);
  std::vector<Item> items;
  const auto changes = cache::merge_with_cached(d_.store, parsed.keys, cfg.keys);
  for (std::size_t i = 0; i < parsed.keys.size(); ++i) {
    items.push_back({std::move(parsed.keys[i]), changes[i]});
  }
  return items;
}

AddService::Prepared AddService::prepare_revocations(const hkp::Submission& sub,
                                                     const config::Config& cfg, bool not_openpgp,
                                                     std::vector<std::string>& missing) {
  auto revocations = hkp::bare_revocations(sub.keytext);
  if (!revocations) {
    return refuse(400, GPG_ERR_NO_PUBKEY,
                  not_openpgp
                      ? "not OpenPGP: keytext holds no public key and no revocation certificate"
                      : "keytext holds OpenPGP packets, but no public key and no revocation "
                        "certificate (send gpg --export output)");
  }
  // Each costs RNP a verification against the key it names: bounded like keys.
  if (revocations->signatures > kMaxKeysPerSubmission) {
    return refuse(413, GPG_ERR_TOO_LARGE,
                  std::to_string(revocations->signatures) +
                      " revocation signatures in one submission; at most " +
                      std::to_string(kMaxKeysPerSubmission));
  }
  std::vector<Item> items;
  for (const auto& keyid : revocations->issuers) {
    std::string fpr, packets;
    d_.store.visit({hkp::SearchKind::long_keyid, keyid}, [&](const cache::KeyRecordView& v) {
      fpr = v.fingerprint.hex();
      packets = std::string(v.packets);
    });
    if (fpr.empty()) {
      missing.push_back(keyid);
      continue;
    }
    auto applied = hkp::apply_signatures(packets, sub.keytext, fpr, cfg.keys);
    if (!applied || (!applied->changed && !applied->key.info.revoked)) {
      return refuse(422, GPG_ERR_BAD_SIGNATURE,
                    "the revocation certificate does not verify against key " + fpr);
    }
    items.push_back({std::move(applied->key),
                     applied->changed ? cache::Change::updated : cache::Change::unchanged});
  }
  if (!missing.empty()) {
    return refuse(422, GPG_ERR_NO_PUBKEY,
                  "revocation certificate for key 0x" + missing.front() +
                      ", which neither this gateway nor its upstreams have: send it together "
                      "with the key");
  }
  return items;
}

asio::awaitable<AddService::Submitted> AddService::submit(const hkp::Submission& submission,
                                                          const HttpRequest& req,
                                                          std::shared_ptr<const Snapshot> snap,
                                                          bool from_replica) {
  const auto& cfg = *snap->config;
  // Parsing, verification and merging are the work pool's; a full queue is refused at once
  // rather than queued without bound (ARCHITECTURE.md, threads).
  const std::string peer = req.peer.text();
  const cache::Blocklist& blocked = snap->blocked;
  std::vector<std::string> missing;
  auto job = [this, &submission, &cfg, &blocked, &peer, &missing] {
    missing.clear();
    return prepare(submission, cfg, blocked, peer, missing);
  };
  auto busy = [this] {
    d_.metrics.keys_rejected("work_queue_full");
    Refusal r = refuse(503, GPG_ERR_EAGAIN,
                       "the gateway is busy verifying other keys; try again in a few seconds");
    r.retry_after = std::chrono::seconds(5);
    return r;
  };
  std::optional<Prepared> prepared = co_await d_.pool.try_run(job, req.peer.client);
  if (!prepared) co_return busy();
  // Bare revocations for keys not cached here (behind a balancer, the replica a submission
  // lands on may not hold the key): fetch those keys as a lookup would, then try once more.
  // Not for a peer's push, which is always a key; at most a few keys per submission.
  constexpr std::size_t kMaxFetched = 4;
  if (!from_replica && !missing.empty() && missing.size() <= kMaxFetched) {
    bool fetched = false;
    const std::vector<std::string> wanted = missing;
    for (const std::string& keyid : wanted) {
      const hkp::Search search{hkp::SearchKind::long_keyid, keyid};
      const std::string qkey = cache::query_key(hkp::Op::get, search);
      Fetched f = co_await fetch_.keys(search, qkey, snap, false);
      if (!f.settle.empty()) co_await fetch_.store(std::move(f.settle));
      fetched = fetched || f.found();
    }
    if (fetched) {
      prepared = co_await d_.pool.try_run(job, req.peer.client);
      if (!prepared) co_return busy();
    }
  }
  if (auto* refused = std::get_if<Refusal>(&*prepared)) co_return std::move(*refused);
  std::vector<Item> items = std::get<std::vector<Item>>(std::move(*prepared));
  const std::int64_t now = d_.now();

  cache::WriteBatch batch;
  for (const auto& it : items) {
    if (it.change != cache::Change::unchanged) batch.keys.push_back({it.key, now, "upload"});
  }
  if (!batch.empty()) {
    if (const auto ec = co_await commit(d_.store, std::move(batch))) {
      log::error("key_add_store_failed", {{"error", ec.message()}});
      co_return refuse(503, GPG_ERR_GENERAL,
                       "the cache could not store the key (" + ec.message() + "); try again");
    }
  }
  if (from_replica) {  // its replica forwarded it and pushed it to every peer: merged, done
    std::vector<AddedKey> merged;
    for (const auto& it : items) {
      log::info("key_merged_from_replica", {{"peer", req.peer.text()},
                                            {"fingerprint", it.key.info.fingerprint},
                                            {"status", cache::change_name(it.change)}});
      merged.push_back({it.key.info.fingerprint, it.change, {}, {}, {}, {}, {}});
    }
    co_return merged;
  }
  std::vector<AddedKey> added = co_await forward_all(items, req, std::move(snap));
  co_return added;
}

asio::awaitable<std::vector<AddService::AddedKey>> AddService::forward_all(
    const std::vector<Item>& items, const HttpRequest& req, std::shared_ptr<const Snapshot> snap) {
  const auto& cfg = *snap->config;
  const std::int64_t now = d_.now();
  const std::string peer = req.peer.text();
  // Forward, and keep what failed for the retrier.
  std::vector<AddedKey> added;
  cache::WriteBatch queue;
  const bool queue_full = d_.store.stats().outbox >= kMaxQueued;
  // Every upstream known unhealthy: queue at once instead of waiting for timeouts; the retrier
  // sends it when one is back.
  const bool panic = Fleet::none_healthy(*snap);
  const std::string unhealthy = "every upstream is unhealthy";
  // Who keeps a submission nobody took: the default (the first keyserver in the try order).
  const auto keeper = std::find_if(snap->upstreams.begin(), snap->upstreams.end(),
                                   [](const auto& u) { return u->keyserver(); });
  for (const auto& it : items) {
    const std::string& fpr = it.key.info.fingerprint;
    const auto id = cache::Fingerprint::from_hex(fpr);  // accepted keys are v4: always one
    Forwarded fw;
    const std::string any_upstream;
    if (cfg.upstreams.forward_adds != config::ForwardAdds::none) {
      if (!panic) {
        fw = co_await forward(fpr, it.key.packets, *snap, any_upstream);
      } else if (cfg.upstreams.forward_adds == config::ForwardAdds::all) {
        for (const auto& u : snap->upstreams) {
          if (u->keyserver()) fw.failed.emplace_back(u->name(), unhealthy);
        }
      } else {
        fw.failed.emplace_back((*keeper)->name(), unhealthy);  // panic: there is a keyserver
      }
    }
    std::vector<std::string> queued;
    // "default": one upstream was the target; if every one failed, the default keeps the job.
    auto enqueue = [&](const std::string& name, const std::string& why) {
      if (queue_full) {
        log::warn("key_forward_not_queued", {{"upstream", name}, {"fingerprint", fpr},
                                             {"reason", "the forward queue is full"}});
        return;
      }
      queued.push_back(name);
      if (id) queue.outbox_put.push_back({name, *id, now + forward_backoff(0), 1, why});
    };
    if (cfg.upstreams.forward_adds == config::ForwardAdds::all) {
      for (const auto& [name, why] : fw.failed) enqueue(name, why);
    } else if (cfg.upstreams.forward_adds == config::ForwardAdds::default_upstream &&
               fw.to.empty() && fw.refused.empty() && keeper != snap->upstreams.end()) {
      enqueue((*keeper)->name(), fw.failed.empty() ? "no upstream tried" : fw.failed.back().second);
    }
    // The other replicas get it too, from the outbox (so a replica that is down gets it when it
    // is back, and the client does not wait on them).
    std::size_t peers = 0;
    for (const auto& r : replicas_ ? replicas_->replicas(cfg) : std::vector<std::string>{}) {
      if (queue_full || !id) break;
      queue.outbox_put.push_back({Destination::replica(r).outbox_key(), *id, now, 0, "not sent yet"});
      ++peers;
    }
    log::info("key_added", {{"peer", peer},
                            {"fingerprint", fpr},
                            {"status", cache::change_name(it.change)},
                            {"forwarded", fw.to.empty() ? "-" : join(fw.to)},
                            {"queued", queued.empty() ? "-" : join(queued)},
                            {"replicas", std::to_string(peers)}});
    added.push_back({fpr, it.change, std::move(fw.to), std::move(fw.refused), std::move(queued),
                     hkp::addresses_of(it.key.info), std::move(fw.replies)});
  }
  const bool to_peers = replicas_ && !queue.outbox_put.empty();
  if (!queue.empty()) co_await commit(d_.store, std::move(queue));
  // The pushes are due now: the retrier sends them at once instead of at its next tick.
  if (to_peers && wake_retrier_) wake_retrier_();
  co_return added;
}

asio::awaitable<void> AddService::retry_due(std::shared_ptr<const Snapshot> snap) {
  const std::int64_t now = d_.now();
  cache::WriteBatch changes;
  auto due = d_.store.outbox();
  for (auto& e : due) {
    if (e.next_attempt > now) continue;
    const std::string fpr = e.fingerprint.hex();
    std::string packets;
    d_.store.visit_fingerprints(std::span(&e.fingerprint, 1),
                              [&](const cache::KeyRecordView& v) { packets = std::string(v.packets); });
    const Destination to = Destination::from_outbox(e.upstream);
    const bool to_peer = to.kind == Destination::Kind::replica;
    const bool known = to_peer ? replicas_ && replicas_->knows(*snap->config, to.name)
                               : snap->find(to.name) != nullptr;
    if (packets.empty() || !known) {  // evicted or purged, or the upstream left the config
      log::warn("key_forward_dropped", {{"upstream", e.upstream},
                                        {"fingerprint", fpr},
                                        {"reason", packets.empty() ? "key no longer cached" : "upstream no longer configured"}});
      changes.outbox_done.emplace_back(e.upstream, e.fingerprint);
      continue;
    }
    if (to_peer) {
      const PeerPush pushed = co_await replicas_->push(to.name, packets, *snap);
      if (pushed.delivered() || pushed.refused()) {
        if (pushed.refused()) {
          log::warn("key_push_refused", {{"replica", to.name},
                                         {"fingerprint", fpr},
                                         {"status", std::to_string(pushed.status)},
                                         {"detail", pushed.detail}});
        }
        changes.outbox_done.emplace_back(e.upstream, e.fingerprint);
        continue;
      }
      if (e.attempts == 0) {  // one line when a replica first cannot be reached, not per retry
        log::warn("key_push_failed", {{"replica", to.name},
                                      {"fingerprint", fpr},
                                      {"error", pushed.detail}});
      }
      e.last_error = pushed.detail;
      e.next_attempt = now + forward_backoff(e.attempts);
      ++e.attempts;
      changes.outbox_put.push_back(std::move(e));
      continue;
    }
    const Forwarded fw = co_await forward(fpr, packets, *snap, e.upstream);
    if (!fw.to.empty() || !fw.refused.empty()) {
      log::info("key_forwarded", {{"upstream", e.upstream},
                                  {"fingerprint", fpr},
                                  {"attempts", std::to_string(e.attempts + 1)},
                                  {"result", fw.to.empty() ? "refused" : "accepted"}});
      changes.outbox_done.emplace_back(e.upstream, e.fingerprint);
      continue;
    }
    e.last_error = fw.failed.empty() ? "not sent" : fw.failed.back().second;
    e.next_attempt = now + forward_backoff(e.attempts);
    ++e.attempts;
    changes.outbox_put.push_back(std::move(e));
  }
  if (!changes.empty()) co_await commit(d_.store, std::move(changes));
}

void AddService::start(asio::any_io_executor executor, SnapshotSource snapshots) {
  running_ = true;
  auto step = [this, snapshots = std::move(snapshots)]() -> asio::awaitable<void> {
    auto snap = snapshots();
    co_await retry_due(std::move(snap));
  };
  wake_retrier_ =
      run_periodically(executor, kRetryTick, running_, "key_forward_retry_failed", std::move(step));
}

}  // namespace hkpgw::gateway
