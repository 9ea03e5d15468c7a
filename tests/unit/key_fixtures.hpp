// The fixture keys as the key tests use them: raw packets as gpg exported them, and the cleaned
// copy the cache would hold.
#pragma once

#include <catch2/catch.hpp>

#include <string>

#include "hkp/keyring.hpp"
#include "support/forge.hpp"
#include "support/harness.hpp"

namespace hkpgw::test {

inline std::string packets_of(const std::string& file) {
  return key_packets(read_file(data_dir() + "/" + file));
}

// The one key a parse must have produced.
inline const hkp::ParsedKey& only_key(const hkp::ParseOutcome& o) {
  REQUIRE(o.keys.size() == 1);
  return o.keys[0];
}

inline std::string cached_copy(const std::string& file) {
  auto o = hkp::parse_keys(read_file(data_dir() + "/" + file), {});
  REQUIRE(o.keys.size() == 1);
  return o.keys[0].packets;
}

}  // namespace hkpgw::test
