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
// How long a lazy write (WriteBatch::lazy) may wait for company before it is committed.
inline constexpr auto kLazyWriteWindow = std::chrono::milliseconds(100);
inline constexpr double kEvictAbove = 0.90, kEvictDownTo = 0.80;
// Records one eviction transaction looks at, at most. Each commit rewrites the pages its random
// deletions in the index tables touch: at 200k keys one round wrote 17 GB (to the block layer)
// in transactions of 512 and 7 GB in transactions of 2048, in 8.0 and 4.8 s.
inline constexpr std::size_t kEvictChunk = 2048;

// Every index key of a key: 'F'+fpr (primary and subkeys), 'K'+64-bit id, 'S'+32-bit id (the
// key ID's low half), 'E'+email. A v4 key ID is its fingerprint's last 8 bytes, a v6 one its
// first 8.
std::vector<std::string> index_keys(const hkp::KeyInfo& info);
// The index key a search looks up; nullopt for text searches and over-long addresses.
std::optional<std::string> index_key_of(const hkp::Search& s);

// Slot (keys table, key = fingerprint): where a key's record is and its times, little-endian:
//   u64 record number | i64 fetched_at | i64 accessed_at | i64 placed_at
// fetched_at: when an upstream last confirmed the key; accessed_at: when a client was last
// served it (to access_granularity); placed_at: when its record was written at the end of the
// records table. Folding an access or a confirmation rewrites these 32 bytes, never the record.
struct Slot {
  std::uint64_t record = 0;
  std::int64_t fetched_at = 0;
  std::int64_t accessed_at = 0;
  std::int64_t placed_at = 0;
  // Read again after its record was placed: eviction gives it a second chance.
  bool read_since_placed() const { return accessed_at > placed_at; }
};
std::string encode_slot(const Slot& s);
std::optional<Slot> decode_slot(std::string_view b);
std::optional<Slot> get_slot(const lmdb::Txn& txn, std::string_view fpr);
// Records table: key = big-endian record number (LMDB's order is placement order, and a new
// record is always appended); value = fingerprint (20 bytes for v4, 32 for v6) | key record
// (record.hpp). The fingerprint's length is not written: it is whichever of the two names a
// slot that points back at the record's number (record_owner), so v6 keys needed no migration
// of the v4 records schema 4 holds.
inline constexpr std::size_t kRecordKeyBytes = 8;
std::string record_key(std::uint64_t number);
std::uint64_t record_number(std::string_view key);  // key must be kRecordKeyBytes long
// A key's record through its slot (nullopt when either is missing or they disagree), without
// the leading fingerprint.
std::optional<std::string_view> get_record(const lmdb::Txn& txn, std::string_view fpr,
                                           const Slot& slot);
// The key whose current record `value` (record number `number`) is: its fingerprint (a view
// into `value`) and slot; nullopt for a record no key points at (a leftover).
struct RecordOwner {
  std::string_view fingerprint;
  Slot slot;
};
std::optional<RecordOwner> record_owner(const lmdb::Txn& txn, std::uint64_t number,
                                        std::string_view value);
// Outbox (key = upstream '\0' fingerprint): i64 next_attempt | u32 attempts | error (rest).
std::string outbox_key(std::string_view upstream, std::string_view fpr);
std::string encode_outbox(const OutboxEntry& e);
std::optional<OutboxEntry> decode_outbox(std::string_view k, std::string_view v);

// Removes a key with its record, slot and index entries; `emails` (when given) gets the
// addresses of its user IDs. Returns the LMDB result.
int remove_key(lmdb::Txn& txn, std::string_view fpr, std::vector<std::string>* emails = nullptr);

}  // namespace hkpgw::cache::detail
