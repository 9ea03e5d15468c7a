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
    const std::string keyid = b.size() == Fingerprint::kV4Bytes ? b.substr(12) : b.substr(0, 8);
    out.push_back("F" + b);
    out.push_back("K" + keyid);
    out.push_back("S" + keyid.substr(4));
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

// tag + the bytes of `hex` (a fingerprint, a key ID or its low half). One allocation: this runs
// on every cached lookup.
std::optional<std::string> with_tag(char tag, std::string_view hex) {
  if (hex.size() % 2 != 0 || hex.size() > 2 * Fingerprint::kMaxBytes) return std::nullopt;
  const auto digit = [](char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  std::string out(1 + hex.size() / 2, tag);
  for (std::size_t i = 0; i < hex.size(); i += 2) {
    const int hi = digit(hex[i]), lo = digit(hex[i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out[1 + i / 2] = static_cast<char>(hi * 16 + lo);
  }
  return out;
}

}  // namespace

std::optional<std::string> index_key_of(const hkp::Search& s) {
  using hkp::SearchKind;
  switch (s.kind) {
    case SearchKind::fingerprint:
      return s.value.size() == 40 || s.value.size() == 64 ? with_tag('F', s.value) : std::nullopt;
    case SearchKind::long_keyid:
      return s.value.size() == 16 ? with_tag('K', s.value) : std::nullopt;
    case SearchKind::short_keyid:
      return s.value.size() == 8 ? with_tag('S', s.value) : std::nullopt;
    case SearchKind::email:
      if (s.value.size() > kMaxEmailIndexBytes) return std::nullopt;
      return "E" + s.value;
    case SearchKind::text: return std::nullopt;
  }
  return std::nullopt;
}

using lmdb::Table;

std::string encode_slot(const Slot& s) {
  std::string out;
  out.reserve(32);
  codec::put_le(out, s.record, 8);
  codec::put_le(out, static_cast<std::uint64_t>(s.fetched_at), 8);
  codec::put_le(out, static_cast<std::uint64_t>(s.accessed_at), 8);
  codec::put_le(out, static_cast<std::uint64_t>(s.placed_at), 8);
  return out;
}
std::optional<Slot> decode_slot(std::string_view b) {
  if (b.size() != 32) return std::nullopt;
  return Slot{codec::get_le(b, 8), static_cast<std::int64_t>(codec::get_le(b.substr(8), 8)),
              static_cast<std::int64_t>(codec::get_le(b.substr(16), 8)),
              static_cast<std::int64_t>(codec::get_le(b.substr(24), 8))};
}
std::optional<Slot> get_slot(const lmdb::Txn& txn, std::string_view fpr) {
  const auto v = txn.get(Table::keys, fpr);
  return v ? decode_slot(*v) : std::nullopt;
}
std::string record_key(std::uint64_t number) {
  std::string k;
  codec::put_be64(k, number);
  return k;
}
std::uint64_t record_number(std::string_view key) { return codec::get_be64(key); }

std::optional<std::string_view> get_record(const lmdb::Txn& txn, std::string_view fpr,
                                           const Slot& slot) {
  const auto v = txn.get(Table::records, record_key(slot.record));
  if (!v || !v->starts_with(fpr)) return std::nullopt;
  return v->substr(fpr.size());
}

std::optional<RecordOwner> record_owner(const lmdb::Txn& txn, std::uint64_t number,
                                        std::string_view value) {
  for (const std::size_t n : {Fingerprint::kV4Bytes, Fingerprint::kMaxBytes}) {
    if (value.size() < n) break;
    const auto slot = get_slot(txn, value.substr(0, n));
    if (slot && slot->record == number) return RecordOwner{value.substr(0, n), *slot};
  }
  return std::nullopt;
}

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
  const auto fpr =
      zero == std::string_view::npos ? std::nullopt : Fingerprint::from_bytes(k.substr(zero + 1));
  if (!fpr || v.size() < 12) return std::nullopt;
  OutboxEntry e;
  e.upstream = std::string(k.substr(0, zero));
  e.fingerprint = *fpr;
  e.next_attempt = static_cast<std::int64_t>(codec::get_le(v, 8));
  e.attempts = static_cast<std::uint32_t>(codec::get_le(v.substr(8), 4));
  e.last_error = std::string(v.substr(12));
  return e;
}

int remove_key(lmdb::Txn& txn, std::string_view fpr, std::vector<std::string>* emails) {
  const auto slot = get_slot(txn, fpr);
  if (!slot) return MDB_SUCCESS;
  std::vector<std::string> ids;
  if (const auto rec = get_record(txn, fpr, *slot)) {
    if (auto r = decode_key_record(*rec)) {
      if (auto info = decode_key_info(r->info_bytes)) {
        ids = index_keys(*info);
        for (auto& u : info->uids) {
          if (emails && !u.email.empty()) emails->push_back(std::move(u.email));
        }
      }
    }
  }
  for (const auto& id : ids) {
    if (const int rc = txn.del(Table::ids, id, fpr)) return rc;
  }
  if (const int rc = txn.del(Table::records, record_key(slot->record))) return rc;
  return txn.del(Table::keys, fpr);
}

}  // namespace hkpgw::cache::detail
