// Key listings: the machine-readable index of draft-shaw-openpgp-hkp-00 section 5.2 (what gpg
// --search-keys, sq and GpgFrontend parse), the HTML listing for browsers (op=index without mr,
// op=vindex), and the parser for mr answers from upstreams.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "hkp/key.hpp"

namespace hkpgw::hkp {

struct IndexUid {
  std::string text;
  std::int64_t created = 0;  // 0 = unknown
  std::int64_t expires = 0;
  bool revoked = false;

  friend bool operator==(const IndexUid&, const IndexUid&) = default;
};

// A subkey as listings show it. Only the fingerprint is known for an entry read back from a
// query record (algo 0): the rest comes from keys this gateway holds.
struct IndexSubkey {
  std::string fingerprint;  // upper-case hex
  std::uint8_t algo = 0;    // 0 = unknown
  std::uint32_t bits = 0;
  std::int64_t created = 0;
  std::int64_t expires = 0;  // absolute, 0 = never
  bool revoked = false;

  friend bool operator==(const IndexSubkey&, const IndexSubkey&) = default;
};

struct IndexEntry {
  std::string id;  // upper-case fingerprint (or a 16-hex key ID when an upstream gave only that)
  std::uint8_t algo = 0;  // 0 = unknown
  std::uint32_t bits = 0;
  std::int64_t created = 0;
  std::int64_t expires = 0;  // absolute, 0 = never
  bool revoked = false;
  bool disabled = false;
  std::vector<IndexUid> uids;
  std::vector<IndexSubkey> subkeys;  // known only for keys we hold

  friend bool operator==(const IndexEntry&, const IndexEntry&) = default;
};

IndexEntry to_index_entry(const KeyInfo& key);

// "info:1:N", then per key a "pub:" line with all 7 fields and one "uid:" line with all 5 fields
// per user ID. The e flag is computed from `now`. User IDs are %-escaped for ':', '%', space,
// controls and non-ASCII (gpg decodes only %XX, never '+').
std::string format_mr_index(std::span<const IndexEntry> entries, std::int64_t now);

// A small self-contained HTML page; verbose (vindex) also lists subkeys.
std::string format_html_index(std::span<const IndexEntry> entries, std::string_view query,
                              bool verbose, std::int64_t now);

// Bounds on what an upstream's listing can make us store and serve: keys past the first
// kMaxIndexEntries are ignored, so are user IDs past kMaxIndexUids per key, and a user ID is cut
// at kMaxIndexUidBytes.
inline constexpr std::size_t kMaxIndexEntries = 500;
inline constexpr std::size_t kMaxIndexUids = 100;
inline constexpr std::size_t kMaxIndexUidBytes = 2048;

// Parses an upstream's mr index. Tolerant like gpg: CRLF, unknown records, missing trailing
// fields. pub entries whose id is not 16 or 40 hex (v6, v3, garbage) are dropped. Bounded as
// above, and linear in the body.
Result<std::vector<IndexEntry>> parse_mr_index(std::string_view body);

// The JSON listing of HKP v2 (index/<identity>): an array of certificates, each with `version`,
// lower-case `fingerprint`, `algorithm` {code, name, bitLength}, `creation` and `expiration`
// (RFC 3339, UTC; expiration only when set), `isRevoked`, `isExpired`, `userIDs` [{uidString,
// creation, isRevoked}] and `subkeys` [{version, fingerprint}]. Entries known only by key ID
// (some upstream listings) are left out: v2 names a certificate by its fingerprint.
std::string format_json_index(std::span<const IndexEntry> entries, std::int64_t now);

// Seconds since the epoch as RFC 3339 in UTC: "2019-01-22T11:56:25Z"; "" for 0 and for times
// past the year 9999 (an upstream's listing may carry any number).
inline constexpr std::int64_t kMaxRfc3339 = 253402300799;  // 9999-12-31T23:59:59Z
std::string rfc3339(std::int64_t t);

std::string html_escape(std::string_view s);

}  // namespace hkpgw::hkp
