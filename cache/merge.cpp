#include "cache/merge.hpp"

#include <algorithm>
#include <map>

#include "hkp/keyring.hpp"

namespace hkpgw::cache {

const char* change_name(Change c) {
  switch (c) {
    case Change::added: return "added";
    case Change::updated: return "updated";
    case Change::unchanged: return "unchanged";
  }
  return "?";
}

std::vector<Change> merge_with_cached(const Store& store, std::vector<hkp::ParsedKey>& keys,
                                      const config::KeysConfig& limits) {
  std::vector<Fingerprint> fprs;
  for (const auto& k : keys) {
    if (auto f = Fingerprint::from_hex(k.info.fingerprint)) fprs.push_back(*f);
  }
  std::map<std::string, std::string> cached;  // fingerprint (hex) -> packets
  store.visit_fingerprints(fprs, [&](const KeyRecordView& v) {
    cached.emplace(v.fingerprint.hex(), std::string(v.packets));
  });
  std::vector<Change> changes(keys.size(), Change::added);
  for (std::size_t i = 0; i < keys.size(); ++i) {
    auto& k = keys[i];
    auto it = cached.find(k.info.fingerprint);
    if (it == cached.end()) continue;
    changes[i] = Change::unchanged;
    if (it->second == k.packets) continue;  // the same copy again: nothing to merge or write
    // A merge that cannot be read back leaves the cached copy alone: never lose what we had.
    if (auto merged = hkp::merge_key(it->second, k.packets, k.info.fingerprint, limits)) {
      if (merged->changed) changes[i] = Change::updated;
      k = std::move(merged->key);
    }
  }
  return changes;
}

std::size_t apply_refused_revocations(const Store& store, hkp::ParseOutcome& parsed,
                                      const config::KeysConfig& limits) {
  std::size_t applied = 0;
  for (const auto& rev : parsed.revocations) {
    const auto id = Fingerprint::from_hex(rev.fingerprint);
    if (!id) continue;
    std::string cached;
    store.visit_fingerprints(std::span(&*id, 1),
                             [&](const KeyRecordView& v) { cached.assign(v.packets); });
    if (cached.empty()) continue;
    auto merged = hkp::merge_key(cached, rev.packets, rev.fingerprint, limits);
    if (!merged || !merged->changed) continue;
    std::erase_if(parsed.rejected,
                  [&](const hkp::RejectedKey& r) { return r.fingerprint == rev.fingerprint; });
    parsed.keys.push_back(std::move(merged->key));
    ++applied;
  }
  return applied;
}

}  // namespace hkpgw::cache
