// Byte layouts of what the cache stores, kept apart from LMDB so they can be tested with tables.
//
// Key record (records table, after the fingerprint; tables.hpp has the layouts):
//   u8 format | i64 fetched_at | str upstream | u32 info_len | KeyInfo | packets (rest)
// The packets come last and the info has its length in front, so the cache-hit path for op=get
// reads the public key packets straight from the mapped page without decoding anything else.
//
// Query record (queries DB, key = query_key()): answers to searches that may match keys the cache
// has never seen (email, text), and negative answers ("not found") for any search.
//   u8 format | i64 fetched_at | str upstream | u8 kind | payload
#pragma once

#include <array>
#include <compare>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "hkp/index.hpp"
#include "hkp/key.hpp"

namespace hkpgw::cache {

inline constexpr std::uint8_t kRecordFormat = 1;

// A primary key's fingerprint as every cache API takes it: 20 bytes for a v4 key, 32 for a v6
// one (the keys table's key), printed as 40 or 64 upper-case hex digits.
class Fingerprint {
 public:
  static constexpr std::size_t kV4Bytes = 20;
  static constexpr std::size_t kMaxBytes = 32;
  // 40 or 64 hex digits, either case; nullopt for anything else.
  static std::optional<Fingerprint> from_hex(std::string_view hex);
  // 20 or 32 bytes; nullopt for any other length.
  static std::optional<Fingerprint> from_bytes(std::string_view bytes);
  std::string_view bytes() const { return {b_.data(), size_}; }
  std::string hex() const;
  friend auto operator<=>(const Fingerprint&, const Fingerprint&) = default;
  friend bool operator==(const Fingerprint&, const Fingerprint&) = default;

 private:
  std::array<char, kMaxBytes> b_{};
  std::uint8_t size_ = kV4Bytes;
};

struct KeyRecordView {
  Fingerprint fingerprint;       // the primary key's
  std::int64_t fetched_at = 0;   // when an upstream last confirmed it (the key's slot)
  std::int64_t accessed_at = 0;  // when a client was last served it, to access_granularity (slot)
  std::string_view upstream;
  std::string_view info_bytes;  // decode_key_info() turns these into a KeyInfo
  std::string_view packets;
};

std::string encode_key_record(const hkp::ParsedKey& key, std::int64_t fetched_at,
                              std::string_view upstream);
// Views point into `bytes`. nullopt for a truncated or foreign record.
std::optional<KeyRecordView> decode_key_record(std::string_view bytes);
std::optional<hkp::KeyInfo> decode_key_info(std::string_view info_bytes);

enum class QueryKind : std::uint8_t {
  not_found = 0,     // every upstream asked said 404 (or sent nothing that matched)
  fingerprints = 1,  // op=get by email: the keys that carry the address
  index = 2,         // op=index by email or text: the upstream's listing
};

struct QueryRecord {
  std::int64_t fetched_at = 0;
  std::string upstream;
  QueryKind kind = QueryKind::not_found;
  std::vector<std::string> fingerprints;   // kind == fingerprints
  std::vector<hkp::IndexEntry> entries;    // kind == index

  friend bool operator==(const QueryRecord&, const QueryRecord&) = default;
};

// "Every upstream asked said it has nothing", as of `now`.
inline QueryRecord not_found_record(std::int64_t now) {
  return QueryRecord{now, "", QueryKind::not_found, {}, {}};
}

std::string encode_query_record(const QueryRecord& q);
std::optional<QueryRecord> decode_query_record(std::string_view bytes);

// The queries-DB key of a search: "<op>:<kind>:<normalised value>". Two searches that any client
// would consider equal map to the same key. Never longer than LMDB's 511-byte key limit.
std::string query_key(hkp::Op op, const hkp::Search& search);


}  // namespace hkpgw::cache
