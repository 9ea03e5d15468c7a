// Inside cache/: the byte layouts of the LMDB tables (lmdb.hpp declares the tables) and the
// operations on them the reading side (store.cpp) and the writing side (store_writer.cpp)
// share. Integers go through codec.hpp. Not part of the cache's API.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cache/lmdb.hpp"
#include "cache/store.hpp"

namespace hkpgw::cache::detail {

inline constexpr std::string_view kSchemaKey = "schema";
inline constexpr std::size_t kMaxEmailIndexBytes = 400;  // LMDB keys are at most 511 bytes
inline constexpr std::size_t kMaxPendingAccesses = 1 << 16;
inline constexpr auto kAccessFoldInterval = std::chrono::seconds(1);
inline constexpr double kEvictAbove = 0.90, kEvictDownTo = 0.80;
inline constexpr std::size_t kEvictChunk = 512;  // keys deleted per eviction transaction

// Every index key of a key: 'F'+fpr (primary and subkeys), 'K'+64-bit id, 'S'+32-bit id,
// 'E'+email.
std::vector<std::string> index_keys(const hkp::KeyInfo& info);
// The index key a search looks up; nullopt for text searches and over-long addresses.
std::optional<std::string> index_key_of(const hkp::Search& s);

// Stamp (stamps table, key = fingerprint): i64 fetched_at | i64 accessed_at, little-endian.
struct Stamp {
  std::int64_t fetched_at = 0;
  std::int64_t accessed_at = 0;
};
std::string encode_stamp(const Stamp& s);
std::optional<Stamp> decode_stamp(std::string_view b);
// LRU table key: big-endian accessed_at (so LMDB's order is time order) | fingerprint.
std::string lru_key(std::int64_t accessed_at, std::string_view fpr);
inline constexpr std::size_t kLruKeyBytes = 8 + 20;
std::int64_t lru_time(std::string_view key);  // key must be kLruKeyBytes long
// Outbox (key = upstream '\0' fingerprint): i64 next_attempt | u32 attempts | error (rest).
std::string outbox_key(std::string_view upstream, std::string_view fpr);
std::string encode_outbox(const OutboxEntry& e);
std::optional<OutboxEntry> decode_outbox(std::string_view k, std::string_view v);

// Writes a key's stamp and moves its LRU entry; removes a key with its index entries, stamp and
// LRU entry. Both return the LMDB result.
int put_stamp(lmdb::Txn& txn, std::string_view fpr, const std::optional<Stamp>& old, const Stamp& s);
std::optional<Stamp> get_stamp(const lmdb::Txn& txn, std::string_view fpr);
int remove_key(lmdb::Txn& txn, std::string_view fpr);

}  // namespace hkpgw::cache::detail
