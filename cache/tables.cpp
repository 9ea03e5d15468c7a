#include "cache/tables.hpp"

#include <algorithm>

#include "cache/codec.hpp"
#include "cache/record.hpp"

namespace hkpgw::cache::detail {

std::vector<std::string> index_keys(const hkp::KeyInfo& info) {
  std::vector<std::string> out;
  auto add_fpr = [&](const std::string& hex) {
    const auto f = Fingerprint::from_hex(hex);
    if (!f) return;
    const std::string b(f->bytes());
    out.push_back("F" + b);
    out.push_back("K" + b.substr(12));
    out.push_back("S" + b.substr(16));
  };
  add_fpr(info.fingerprint);
  for (const auto& s : info.subkeys) add_fpr(s.fingerprint);
  for (const auto& u : info.uids) {
    if (!u.email.empty() && u.email.size() <= kMaxEmailIndexBytes) out.push_back("E" + u.email);
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

namespace {

std::optional<std::string> with_tag(char tag, const std::string& hex, std::size_t from) {
  const auto f = Fingerprint::from_hex(hex);
  if (!f) return std::nullopt;
  return tag + std::string(f->bytes().substr(from));
}

}  // namespace

std::optional<std::string> index_key_of(const hkp::Search& s) {
  using hkp::SearchKind;
  switch (s.kind) {
    // Key IDs are the fingerprint's low bytes: padded to a fingerprint, then cut.
    case SearchKind::fingerprint: return with_tag('F', s.value, 0);
    case SearchKind::long_keyid: return with_tag('K', std::string(24, '0') + s.value, 12);
    case SearchKind::short_keyid: return with_tag('S', std::string(32, '0') + s.value, 16);
    case SearchKind::email:
      if (s.value.size() > kMaxEmailIndexBytes) return std::nullopt;
      return "E" + s.value;
    case SearchKind::text: return std::nullopt;
  }
  return std::nullopt;
}

using lmdb::Table;

std::string encode_stamp(const Stamp& s) {
  std::string out;
  codec::put_le(out, static_cast<std::uint64_t>(s.fetched_at), 8);
  codec::put_le(out, static_cast<std::uint64_t>(s.accessed_at), 8);
  return out;
}
std::optional<Stamp> decode_stamp(std::string_view b) {
  if (b.size() != 16) return std::nullopt;
  return Stamp{static_cast<std::int64_t>(codec::get_le(b, 8)),
               static_cast<std::int64_t>(codec::get_le(b.substr(8), 8))};
}
std::string lru_key(std::int64_t accessed_at, std::string_view fpr) {
  std::string k;
  codec::put_be64(k, static_cast<std::uint64_t>(std::max<std::int64_t>(accessed_at, 0)));
  k += fpr;
  return k;
}
std::int64_t lru_time(std::string_view key) { return static_cast<std::int64_t>(codec::get_be64(key)); }

std::string outbox_key(std::string_view upstream, std::string_view fpr) {
  std::string k(upstream);
  k.push_back('\0');
  k += fpr;
  return k;
}
std::string encode_outbox(const OutboxEntry& e) {
  std::string out;
  codec::put_le(out, static_cast<std::uint64_t>(e.next_attempt), 8);
  codec::put_le(out, e.attempts, 4);
  out += e.last_error.substr(0, 300);
  return out;
}
std::optional<OutboxEntry> decode_outbox(std::string_view k, std::string_view v) {
  const auto zero = k.find('\0');
  if (zero == std::string_view::npos || k.size() - zero - 1 != 20 || v.size() < 12) return std::nullopt;
  OutboxEntry e;
  e.upstream = std::string(k.substr(0, zero));
  e.fingerprint = *Fingerprint::from_bytes(k.substr(zero + 1));  // 20 bytes, checked above
  e.next_attempt = static_cast<std::int64_t>(codec::get_le(v, 8));
  e.attempts = static_cast<std::uint32_t>(codec::get_le(v.substr(8), 4));
  e.last_error = std::string(v.substr(12));
  return e;
}

// Moves `fpr`'s stamp to `s`, keeping the LRU table in step.
int put_stamp(lmdb::Txn& txn, std::string_view fpr, const std::optional<Stamp>& old, const Stamp& s) {
  const bool moved = !old || old->accessed_at != s.accessed_at;
  if (old && moved) {
    if (const int rc = txn.del(Table::lru, lru_key(old->accessed_at, fpr))) return rc;
  }
  if (const int rc = txn.put(Table::stamps, fpr, encode_stamp(s))) return rc;
  if (moved) return txn.put(Table::lru, lru_key(s.accessed_at, fpr), {});
  return MDB_SUCCESS;
}

std::optional<Stamp> get_stamp(const lmdb::Txn& txn, std::string_view fpr) {
  const auto v = txn.get(Table::stamps, fpr);
  return v ? decode_stamp(*v) : std::nullopt;
}

// Removes a key with its identifiers, stamp and LRU entry.
int remove_key(lmdb::Txn& txn, std::string_view fpr) {
  const auto rec = txn.get(Table::keys, fpr);
  if (!rec) return MDB_SUCCESS;
  std::vector<std::string> ids;
  if (auto r = decode_key_record(*rec)) {
    if (auto info = decode_key_info(r->info_bytes)) ids = index_keys(*info);
  }
  for (const auto& id : ids) {
    if (const int rc = txn.del(Table::ids, id, fpr)) return rc;
  }
  if (auto s = get_stamp(txn, fpr)) {
    if (const int rc = txn.del(Table::lru, lru_key(s->accessed_at, fpr))) return rc;
  }
  if (const int rc = txn.del(Table::stamps, fpr)) return rc;
  return txn.del(Table::keys, fpr);
}

}  // namespace hkpgw::cache::detail
