#include "cache/lmdb_codec.hpp"

#include <algorithm>

#include "cache/record.hpp"

namespace hkpgw::cache::detail {

std::vector<std::string> index_keys(const hkp::KeyInfo& info) {
  std::vector<std::string> out;
  auto add_fpr = [&](const std::string& hex) {
    const std::string b = fingerprint_bytes(hex);
    if (b.empty()) return;
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

std::optional<std::string> index_key_of(const hkp::Search& s) {
  using hkp::SearchKind;
  switch (s.kind) {
    case SearchKind::fingerprint: return "F" + fingerprint_bytes(s.value);
    case SearchKind::long_keyid: return "K" + fingerprint_bytes(std::string(24, '0') + s.value).substr(12);
    case SearchKind::short_keyid: return "S" + fingerprint_bytes(std::string(32, '0') + s.value).substr(16);
    case SearchKind::email:
      if (s.value.size() > kMaxEmailIndexBytes) return std::nullopt;
      return "E" + s.value;
    case SearchKind::text: return std::nullopt;
  }
  return std::nullopt;
}

std::string encode_stamp(const Stamp& s) {
  std::string out(16, '\0');
  for (int i = 0; i < 8; ++i) {
    out[i] = static_cast<char>((static_cast<std::uint64_t>(s.fetched_at) >> (8 * i)) & 0xFF);
    out[8 + i] = static_cast<char>((static_cast<std::uint64_t>(s.accessed_at) >> (8 * i)) & 0xFF);
  }
  return out;
}
std::optional<Stamp> decode_stamp(std::string_view b) {
  if (b.size() != 16) return std::nullopt;
  std::uint64_t f = 0, a = 0;
  for (int i = 0; i < 8; ++i) {
    f |= static_cast<std::uint64_t>(static_cast<unsigned char>(b[i])) << (8 * i);
    a |= static_cast<std::uint64_t>(static_cast<unsigned char>(b[8 + i])) << (8 * i);
  }
  return Stamp{static_cast<std::int64_t>(f), static_cast<std::int64_t>(a)};
}
std::string lru_key(std::int64_t accessed_at, std::string_view fpr) {
  std::string k(8, '\0');
  const auto t = static_cast<std::uint64_t>(std::max<std::int64_t>(accessed_at, 0));
  for (int i = 0; i < 8; ++i) k[i] = static_cast<char>((t >> (8 * (7 - i))) & 0xFF);
  k += fpr;
  return k;
}

std::string outbox_key(std::string_view upstream, std::string_view fpr) {
  std::string k(upstream);
  k.push_back('\0');
  k += fpr;
  return k;
}
std::string encode_outbox(const OutboxEntry& e) {
  std::string out(12, '\0');
  for (int i = 0; i < 8; ++i) {
    out[i] = static_cast<char>((static_cast<std::uint64_t>(e.next_attempt) >> (8 * i)) & 0xFF);
  }
  for (int i = 0; i < 4; ++i) out[8 + i] = static_cast<char>((e.attempts >> (8 * i)) & 0xFF);
  out += e.last_error.substr(0, 300);
  return out;
}
std::optional<OutboxEntry> decode_outbox(std::string_view k, std::string_view v) {
  const auto zero = k.find('\0');
  if (zero == std::string_view::npos || k.size() - zero - 1 != 20 || v.size() < 12) return std::nullopt;
  OutboxEntry e;
  e.upstream = std::string(k.substr(0, zero));
  e.fingerprint = std::string(k.substr(zero + 1));
  std::uint64_t t = 0;
  for (int i = 0; i < 8; ++i) t |= static_cast<std::uint64_t>(static_cast<unsigned char>(v[i])) << (8 * i);
  e.next_attempt = static_cast<std::int64_t>(t);
  for (int i = 0; i < 4; ++i) e.attempts |= static_cast<std::uint32_t>(static_cast<unsigned char>(v[8 + i])) << (8 * i);
  e.last_error = std::string(v.substr(12));
  return e;
}

// Moves `fpr`'s stamp to `s`, keeping the LRU table in step.
int put_stamp(MDB_txn* txn, unsigned stamps_dbi, unsigned lru_dbi, std::string_view fpr,
              const std::optional<Stamp>& old, const Stamp& s) {
  if (old && old->accessed_at != s.accessed_at) {
    const std::string ok = lru_key(old->accessed_at, fpr);
    MDB_val okv = val(ok);
    const int rc = mdb_del(txn, lru_dbi, &okv, nullptr);
    if (rc && rc != MDB_NOTFOUND) return rc;
  }
  const std::string bytes = encode_stamp(s);
  MDB_val k = val(fpr), v = val(bytes);
  if (int rc = mdb_put(txn, stamps_dbi, &k, &v, 0)) return rc;
  if (!old || old->accessed_at != s.accessed_at) {
    const std::string nk = lru_key(s.accessed_at, fpr);
    MDB_val nkv = val(nk), empty{0, nullptr};
    if (int rc = mdb_put(txn, lru_dbi, &nkv, &empty, 0)) return rc;
  }
  return MDB_SUCCESS;
}

std::optional<Stamp> get_stamp(MDB_txn* txn, unsigned stamps_dbi, std::string_view fpr) {
  MDB_val k = val(fpr), v;
  if (mdb_get(txn, stamps_dbi, &k, &v) != MDB_SUCCESS) return std::nullopt;
  return decode_stamp(view(v));
}

// Removes a key with its identifiers, stamp and LRU entry.
int remove_key(MDB_txn* txn, unsigned keys_dbi, unsigned ids_dbi, unsigned stamps_dbi,
               unsigned lru_dbi, std::string_view fpr) {
  MDB_val k = val(fpr), rec;
  int rc = mdb_get(txn, keys_dbi, &k, &rec);
  if (rc == MDB_NOTFOUND) return MDB_SUCCESS;
  if (rc) return rc;
  std::vector<std::string> ids;
  if (auto r = decode_key_record(view(rec))) {
    if (auto info = decode_key_info(r->info_bytes)) ids = index_keys(*info);
  }
  for (const auto& id : ids) {
    MDB_val ik = val(id), iv = val(fpr);
    rc = mdb_del(txn, ids_dbi, &ik, &iv);
    if (rc && rc != MDB_NOTFOUND) return rc;
  }
  if (auto s = get_stamp(txn, stamps_dbi, fpr)) {
    const std::string lk = lru_key(s->accessed_at, fpr);
    MDB_val lkv = val(lk);
    rc = mdb_del(txn, lru_dbi, &lkv, nullptr);
    if (rc && rc != MDB_NOTFOUND) return rc;
  }
  MDB_val sk = val(fpr);
  rc = mdb_del(txn, stamps_dbi, &sk, nullptr);
  if (rc && rc != MDB_NOTFOUND) return rc;
  rc = mdb_del(txn, keys_dbi, &k, nullptr);
  return rc == MDB_NOTFOUND ? MDB_SUCCESS : rc;
}


}  // namespace hkpgw::cache::detail
