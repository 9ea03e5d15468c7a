// Keys the operator removed for good ([cache] blocklist, docs/contract.md): a file of v4
// fingerprints, one per line (spaces inside, either case, `#` comments), read with the config at
// start and at every reload, so every replica that reads the same file drops the same keys. A
// blocked key is purged from the cache, never fetched by fingerprint, never kept from an
// upstream's answer, never accepted from a submission nor forwarded: it is answered as a key
// that does not exist (404), so the list is no oracle of what was blocked.
#pragma once

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

#include "cache/record.hpp"

namespace hkpgw::cache {

class Blocklist {
 public:
  Blocklist() = default;
  // Throws std::runtime_error "FILE:LINE: what" for a line that is no fingerprint, and for a
  // file that cannot be read. "" is the empty list. A file modified less than kQuiet ago is
  // waited for (a writer may be between two writes), and it must be the same before and after
  // the read; one that keeps changing for kMaxWait is refused. Blocks: call it off the network
  // threads (the reload reads it on the work pool).
  static Blocklist load(const std::string& path);
  static constexpr std::size_t kMaxEntries = 1'000'000;
  static constexpr std::chrono::milliseconds kQuiet{1000};
  static constexpr std::chrono::seconds kMaxWait{10};

  bool contains(const Fingerprint& f) const;
  bool contains_hex(std::string_view hex) const;  // 40 hex digits, either case
  const std::vector<Fingerprint>& all() const { return sorted_; }
  bool empty() const { return sorted_.empty(); }

 private:
  std::vector<Fingerprint> sorted_;  // by bytes
};

}  // namespace hkpgw::cache
