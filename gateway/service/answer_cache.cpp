#include "gateway/service/answer_cache.hpp"

#include <cstring>

#include "gateway/service/random_entry.hpp"
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
  const std::size_t budget = shard_budget_.load(std::memory_order_relaxed);
  if (cost > budget || !admit(fpr)) return made;
  std::lock_guard lock(s.mutex);
  if (const auto old = s.entries.find(fpr); old != s.entries.end()) {
    s.bytes -= cost_of(*old->second);
    s.entries.erase(old);
  }
  while (s.bytes + cost > budget && !s.entries.empty()) {  // full: drop at random
    const auto victim = random_entry(s.entries, s.victim);
    s.bytes -= cost_of(*victim->second);
    s.entries.erase(victim);
  }
  s.entries.emplace(fpr, made);
  s.bytes += cost;
  return made;
}

void AnswerCache::set_max_bytes(std::size_t max_bytes) {
  shard_budget_.store(max_bytes / kShards, std::memory_order_relaxed);
  for (Shard& s : shards_) {
    std::lock_guard lock(s.mutex);
    while (s.bytes > max_bytes / kShards && !s.entries.empty()) {
      const auto victim = random_entry(s.entries, s.victim);
      s.bytes -= cost_of(*victim->second);
      s.entries.erase(victim);
    }
  }
}

bool AnswerCache::admit(const cache::Fingerprint& f) {
  std::uint32_t h = 0;  // all of the fingerprint, folded
  for (std::size_t at = 0; at + 4 <= f.bytes().size(); at += 4) {
    std::uint32_t w;
    std::memcpy(&w, f.bytes().data() + at, sizeof w);
    h = (h ^ w) * 0x9E3779B1u;
  }
  h |= 1;  // 0 = empty
  static_assert(kDoorkeeper == 1 << 16);
  auto& slot = seen_[(h * 0x9E3779B1u) >> 16];  // the product's top 16 bits
  if (slot.load(std::memory_order_relaxed) == h) return true;
  slot.store(h, std::memory_order_relaxed);
  return false;
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
