#include "gateway/service/answer_cache.hpp"

#include <cstring>

#include "hkp/armor.hpp"

namespace hkpgw::gateway {

namespace {
std::size_t cost_of(const AnswerCache::Prepared& p) { return p.packets.size() + p.armor.size(); }
}  // namespace

std::size_t AnswerCache::FingerprintHash::operator()(const cache::Fingerprint& f) const noexcept {
  std::size_t h;  // a fingerprint is a hash already: its first bytes are as good as any
  std::memcpy(&h, f.bytes().data(), sizeof h);
  return h;
}

std::shared_ptr<const AnswerCache::Prepared> AnswerCache::prepared(const cache::Fingerprint& fpr,
                                                                   std::string_view packets) {
  Shard& s = shard_of(fpr);
  {
    std::lock_guard lock(s.mutex);
    const auto it = s.entries.find(fpr);
    if (it != s.entries.end() && it->second->packets == packets) return it->second;
  }
  auto made = std::make_shared<const Prepared>(  // unlocked
      Prepared{std::string(packets), hkp::armor_public_keys(packets)});
  const std::size_t cost = cost_of(*made);
  if (cost > shard_budget_) return made;
  std::lock_guard lock(s.mutex);
  auto [it, fresh] = s.entries.try_emplace(fpr);
  if (!fresh) s.bytes -= cost_of(*it->second);
  if (s.bytes + cost > shard_budget_) {  // full: start the shard over
    s.entries.clear();
    s.bytes = 0;
    it = s.entries.try_emplace(fpr).first;
  }
  it->second = made;
  s.bytes += cost;
  return made;
}

void AnswerCache::forget(const cache::Committed& changed) {
  reused_.forget(changed);
  for (const auto& f : changed.keys) {
    Shard& s = shard_of(f);
    std::lock_guard lock(s.mutex);
    const auto it = s.entries.find(f);
    if (it == s.entries.end()) continue;
    s.bytes -= cost_of(*it->second);
    s.entries.erase(it);
  }
}

AnswerCache::Stats AnswerCache::stats() const {
  Stats out;
  for (const auto& s : shards_) {
    std::lock_guard lock(s.mutex);
    out.entries += s.entries.size();
    out.bytes += s.bytes;
  }
  return out;
}

}  // namespace hkpgw::gateway
