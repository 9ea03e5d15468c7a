// The one place a new copy of a key meets the cached one (upstream fetches, uploads, cache
// import): each key is merged with its cached copy, if any, so a refresh never loses a user ID,
// subkey or revocation the cache had; the result says what the cache would gain.
#pragma once

#include <vector>

#include "cache/store.hpp"
#include "config/config.hpp"
#include "hkp/key.hpp"
#include "hkp/keyring.hpp"

namespace hkpgw::cache {

enum class Change {
  added,      // not cached yet
  updated,    // the merged key has something the cached copy did not: write it
  unchanged,  // nothing new: the record need not be rewritten
};
const char* change_name(Change c);

// Replaces each key by its union with the cached copy (identical bytes short-cut to unchanged).
// Returns one Change per key, in order.
std::vector<Change> merge_with_cached(const Store& store, std::vector<hkp::ParsedKey>& keys,
                                      const config::KeysConfig& limits);

// For each key `parsed` refused whole but whose revocations it kept (ParseOutcome::revocations)
// and that the cache holds: the cached copy with those revocations that verify, as a key of
// `parsed.keys` in place of the refusal (a padded copy from an upstream or an upload can carry
// a genuine revocation, and nothing may keep it from the cached key). Revocations that change
// nothing leave the refusal as it was. Returns how many keys gained a revocation.
std::size_t apply_refused_revocations(const Store& store, hkp::ParseOutcome& parsed,
                                      const config::KeysConfig& limits);

}  // namespace hkpgw::cache
