#include "cache/record.hpp"

#include <algorithm>

#include "cache/codec.hpp"
#include "hkp/text.hpp"

namespace hkpgw::cache {
namespace {

class Writer {
 public:
  void u8(std::uint8_t v) { out_.push_back(static_cast<char>(v)); }
  void u32(std::uint32_t v) { codec::put_le(out_, v, 4); }
  void i64(std::int64_t v) { codec::put_le(out_, static_cast<std::uint64_t>(v), 8); }
  void str(std::string_view s) {
    u32(static_cast<std::uint32_t>(s.size()));
    out_.append(s);
  }
  std::string& bytes() { return out_; }

 private:
  std::string out_;  // little-endian (cache/codec.hpp): a cache file moves between machines
};

class Reader {
 public:
  explicit Reader(std::string_view in) : in_(in) {}
  bool ok() const { return ok_; }
  std::string_view rest() const { return in_; }

  std::uint8_t u8() { return static_cast<std::uint8_t>(take(1)); }
  std::uint32_t u32() { return static_cast<std::uint32_t>(take(4)); }
  std::int64_t i64() { return static_cast<std::int64_t>(take(8)); }
  std::string_view view(std::size_t n) {
    if (!ok_ || in_.size() < n) {
      ok_ = false;
      return {};
    }
    auto v = in_.substr(0, n);
    in_.remove_prefix(n);
    return v;
  }
  std::string_view str() { return view(u32()); }
  // A count that cannot possibly fit in what is left marks a corrupt record early.
  std::uint32_t count(std::size_t min_item_bytes) {
    const std::uint32_t n = u32();
    if (static_cast<std::uint64_t>(n) * min_item_bytes > in_.size()) ok_ = false;
    return ok_ ? n : 0;
  }

 private:
  std::uint64_t take(int width) {
    if (!ok_ || in_.size() < static_cast<std::size_t>(width)) {
      ok_ = false;
      return 0;
    }
    const std::uint64_t v = codec::get_le(in_, width);
    in_.remove_prefix(static_cast<std::size_t>(width));
    return v;
  }
  std::string_view in_;
  bool ok_ = true;
};

void write_info(Writer& w, const hkp::KeyInfo& k) {
  w.str(k.fingerprint);
  w.u8(k.version);
  w.u8(k.algo);
  w.u32(k.bits);
  w.i64(k.created);
  w.i64(k.expires);
  w.u8(k.revoked);
  w.u32(static_cast<std::uint32_t>(k.uids.size()));
  for (const auto& u : k.uids) {
    w.str(u.text);
    w.str(u.email);
    w.i64(u.created);
    w.u8(u.revoked);
  }
  w.u32(static_cast<std::uint32_t>(k.subkeys.size()));
  for (const auto& s : k.subkeys) {
    w.str(s.fingerprint);
    w.u8(s.algo);
    w.u32(s.bits);
    w.i64(s.created);
    w.i64(s.expires);
    w.u8(s.revoked);
  }
}

void write_entry(Writer& w, const hkp::IndexEntry& e) {
  w.str(e.id);
  w.u8(e.algo);
  w.u32(e.bits);
  w.i64(e.created);
  w.i64(e.expires);
  w.u8(static_cast<std::uint8_t>(e.revoked | (e.disabled << 1)));
  w.u32(static_cast<std::uint32_t>(e.uids.size()));
  for (const auto& u : e.uids) {
    w.str(u.text);
    w.i64(u.created);
    w.i64(u.expires);
    w.u8(u.revoked);
  }
  w.u32(static_cast<std::uint32_t>(e.subkeys.size()));
  for (const auto& s : e.subkeys) w.str(s.fingerprint);  // the rest comes from the key record
}

hkp::IndexEntry read_entry(Reader& r) {
  hkp::IndexEntry e;
  e.id = r.str();
  e.algo = r.u8();
  e.bits = r.u32();
  e.created = r.i64();
  e.expires = r.i64();
  const auto flags = r.u8();
  e.revoked = flags & 1;
  e.disabled = flags & 2;
  for (auto n = r.count(21); n > 0 && r.ok(); --n) {
    hkp::IndexUid u;
    u.text = r.str();
    u.created = r.i64();
    u.expires = r.i64();
    u.revoked = r.u8();
    e.uids.push_back(std::move(u));
  }
  for (auto n = r.count(4); n > 0 && r.ok(); --n) {
    hkp::IndexSubkey s;
    s.fingerprint = r.str();
    e.subkeys.push_back(std::move(s));
  }
  return e;
}

}  // namespace

std::string encode_key_record(const hkp::ParsedKey& key, std::int64_t fetched_at,
                              std::string_view upstream) {
  Writer info;
  write_info(info, key.info);
  Writer w;
  w.u8(kRecordFormat);
  w.i64(fetched_at);
  w.str(upstream);
  w.str(info.bytes());
  w.bytes().append(key.packets);
  return std::move(w.bytes());
}

std::optional<KeyRecordView> decode_key_record(std::string_view bytes) {
  Reader r(bytes);
  if (r.u8() != kRecordFormat) return std::nullopt;
  KeyRecordView v;
  v.fetched_at = r.i64();
  v.upstream = r.str();
  v.info_bytes = r.str();
  if (!r.ok()) return std::nullopt;
  v.packets = r.rest();
  return v;
}

std::optional<hkp::KeyInfo> decode_key_info(std::string_view info_bytes) {
  Reader r(info_bytes);
  hkp::KeyInfo k;
  k.fingerprint = r.str();
  k.version = r.u8();
  k.algo = r.u8();
  k.bits = r.u32();
  k.created = r.i64();
  k.expires = r.i64();
  k.revoked = r.u8();
  for (auto n = r.count(25); n > 0 && r.ok(); --n) {
    hkp::UserId u;
    u.text = r.str();
    u.email = r.str();
    u.created = r.i64();
    u.revoked = r.u8();
    k.uids.push_back(std::move(u));
  }
  for (auto n = r.count(26); n > 0 && r.ok(); --n) {
    hkp::Subkey s;
    s.fingerprint = r.str();
    s.algo = r.u8();
    s.bits = r.u32();
    s.created = r.i64();
    s.expires = r.i64();
    s.revoked = r.u8();
    k.subkeys.push_back(std::move(s));
  }
  if (!r.ok()) return std::nullopt;
  return k;
}

std::string encode_query_record(const QueryRecord& q) {
  Writer w;
  w.u8(kRecordFormat);
  w.i64(q.fetched_at);
  w.str(q.upstream);
  w.u8(static_cast<std::uint8_t>(q.kind));
  if (q.kind == QueryKind::fingerprints) {
    w.u32(static_cast<std::uint32_t>(q.fingerprints.size()));
    for (const auto& f : q.fingerprints) w.str(f);
  } else if (q.kind == QueryKind::index) {
    w.u32(static_cast<std::uint32_t>(q.entries.size()));
    for (const auto& e : q.entries) write_entry(w, e);
  }
  return std::move(w.bytes());
}

std::optional<QueryRecord> decode_query_record(std::string_view bytes) {
  Reader r(bytes);
  if (r.u8() != kRecordFormat) return std::nullopt;
  QueryRecord q;
  q.fetched_at = r.i64();
  q.upstream = r.str();
  const auto kind = r.u8();
  if (kind > 2) return std::nullopt;
  q.kind = static_cast<QueryKind>(kind);
  if (q.kind == QueryKind::fingerprints) {
    for (auto n = r.count(4); n > 0 && r.ok(); --n) q.fingerprints.emplace_back(r.str());
  } else if (q.kind == QueryKind::index) {
    for (auto n = r.count(30); n > 0 && r.ok(); --n) q.entries.push_back(read_entry(r));
  }
  if (!r.ok()) return std::nullopt;
  return q;
}

std::string query_key(hkp::Op op, const hkp::Search& search) {
  // vindex shares index's answers: the same keys, a different rendering.
  const char* op_part = op == hkp::Op::get ? "get" : "index";
  std::string value = search.kind == hkp::SearchKind::text ? hkp::ascii_lower(search.value)
                                                           : search.value;
  std::string key = std::string(op_part) + ":" + hkp::kind_name(search.kind) + ":";
  value.resize(std::min<std::size_t>(value.size(), 480 - key.size()));
  return key + value;
}

std::optional<Fingerprint> Fingerprint::from_hex(std::string_view hex) {
  if (hex.size() != 2 * kV4Bytes && hex.size() != 2 * kMaxBytes) return std::nullopt;
  auto digit = [](char c) {
    return c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                          : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
  };
  Fingerprint f;
  f.size_ = static_cast<std::uint8_t>(hex.size() / 2);
  for (std::size_t i = 0; i < f.size_; ++i) {
    const int hi = digit(hex[2 * i]), lo = digit(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    f.b_[i] = static_cast<char>(hi * 16 + lo);
  }
  return f;
}

std::optional<Fingerprint> Fingerprint::from_bytes(std::string_view bytes) {
  if (bytes.size() != kV4Bytes && bytes.size() != kMaxBytes) return std::nullopt;
  Fingerprint f;
  f.size_ = static_cast<std::uint8_t>(bytes.size());
  std::copy(bytes.begin(), bytes.end(), f.b_.begin());
  return f;
}

std::string Fingerprint::hex() const { return hkp::hex_upper(bytes()); }

}  // namespace hkpgw::cache
