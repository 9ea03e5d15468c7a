// Turning untrusted bytes (an upstream answer, an upload, a keyring export) into ParsedKeys with
// RNP: armored or binary input, several keys per body, bad keys skipped one by one, secret key
// material detected and refused, third-party signatures stripped per policy, size limits applied.
// CPU bound (about 1 ms for an ed25519 key, 3 ms for RSA-3072): never call it on a cache hit.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"
#include "hkp/armor.hpp"
#include "hkp/key.hpp"
#include "hkp/key_filter.hpp"

namespace hkpgw::hkp {

struct ParseOutcome {
  std::vector<ParsedKey> keys;       // usable public keys, in input order
  std::vector<RejectedKey> rejected;
  bool secret_material = false;  // the input held secret key packets: callers refuse all of it
  bool not_openpgp = false;      // nothing in the input parsed as OpenPGP at all
  std::optional<Problem> bad_input;  // armor that is not a public key block, or damaged (400)
  std::size_t key_count = 0;         // distinct primary keys seen, kept or refused
  // Refused keys' revocations by their own primary key, not verified yet (FilterOutcome): a
  // caller that holds such a key applies them with merge_key, so no padding of a copy keeps a
  // revocation from a cached key.
  std::vector<FilteredKey> revocations;
  // What cleaning removed from the accepted keys, by reason: those of FilterOutcome::dropped,
  // and invalid_signature, invalid_user_id, invalid_subkey (RNP's verdicts).
  std::map<std::string, std::size_t> dropped;
  // The estimated CPU of verifying the keys (key_filter.hpp, verification_cost_us), and how many
  // were left unverified (absent from `keys`) for verify_budget_per_submission.
  std::uint64_t verify_cost_us = 0;
  std::size_t over_budget_keys = 0;
};

// What parse_keys does with input whose keys together would cost more than
// verify_budget_per_submission to verify: verify none (a client's submission, refused whole),
// the first keys that fit (an upstream's answer), or all (the operator's own import).
enum class VerifyBudget { all_or_nothing, first_keys, unbounded };

// Thread-safe (each call has its own RNP context). Never throws for bad input.
// The input is dearmored strictly (dearmor) and filtered structurally (filter_keys: placement,
// third-party policy, size and count limits, signature budgets); then RNP verifies each key:
// signatures by the primary key that do not verify are dropped wherever they stand, so are user
// IDs without a valid self-signature (a revoked one stays: it carries its revocation) and
// subkeys without a valid binding. A key whose primary key has no valid self-signature of any
// kind is rejected; a key without user IDs is kept. With more than `max_keys` primary keys
// nothing is verified (key_count says how many there were, up to max_keys + 1).
ParseOutcome parse_keys(std::string_view data, const config::KeysConfig& limits,
                        std::size_t max_keys = SIZE_MAX,
                        VerifyBudget budget = VerifyBudget::unbounded);

// Merges two copies of one key (binary packets): the union of their user IDs, subkeys and
// signatures, cleaned like parse_keys. `changed` is false when the result is byte for byte the
// `cached` copy (the incoming copy added nothing), so the caller need not rewrite it. When the
// union is refused (over max_user_ids, say), the incoming copy's revocations by the primary key
// are still applied to the cached copy: nothing else in a copy can block a revocation.
struct MergeResult {
  ParsedKey key;
  bool changed = true;
};
std::optional<MergeResult> merge_key(std::string_view cached, std::string_view incoming,
                                     const std::string& fingerprint,
                                     const config::KeysConfig& limits);

// Applies bare signatures (armored or binary) to a cached key (binary packets): each is verified
// against the key (by RNP, or hkp/modern for the keys RNP cannot read) and the ones that hold
// are added. The result is cleaned like parse_keys; `changed` as in merge_key.
// nullopt when the key cannot be read back.
std::optional<MergeResult> apply_signatures(std::string_view cached, std::string_view signatures,
                                            const std::string& fingerprint,
                                            const config::KeysConfig& limits);

}  // namespace hkpgw::hkp
