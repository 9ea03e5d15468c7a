// The first look at untrusted key packets, before RNP sees any of them: structure only, no
// cryptography, linear in the input. It decides where every packet stands and whether it may
// stand there, and bounds what the expensive verification after it will have to do:
//
//  - copies of one primary key are folded into one transferable key (user IDs, subkeys and
//    signatures deduplicated by their bytes), in a canonical order;
//  - a signature is kept only in a place its type belongs: after the primary key a direct-key
//    signature or key revocation, after a user ID or attribute a certification or certification
//    revocation, after a subkey only a binding or subkey revocation issued by the primary key;
//    unknown types, document signatures and unparseable ones go wherever they stand;
//  - signatures by other keys are counted wherever they stand and the policy
//    (`third_party_sigs`) is applied to all of them: under `strip` only a key revocation by a
//    revoker the owner designated and certifications by the operator's `certifiers` stay (each
//    few per issuer; RNP then verifies the certifiers' and the designations);
//  - user IDs and subkeys that no signature claiming the primary key binds are dropped before
//    anything is counted (bare padding never refuses a key);
//  - per-packet size limits, `max_user_ids` and `max_subkeys` (a key over either is refused
//    whole: trimming would let an attacker choose what stays; its revocations are kept aside in
//    `revocations`, so a caller holding the key can still apply them), and a bound on the new
//    self-issued signatures RNP will verify per component and per key (revocations have their
//    own budget, so a flood of forged certifications cannot push one out, and within a budget
//    the choice is random, never an order the sender controls).
//
// Signatures from the first `trusted_prefix` bytes (the cached copy, verified when it was
// stored) are never dropped for a budget, so an incoming copy cannot displace a revocation.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"
#include "hkp/problem.hpp"

namespace hkpgw::hkp {

// How far ahead of this machine's clock a signature may be dated (a signer's clock runs fast):
// later ones are dropped unread (future_signature), and RNP verifies as of now plus this, since
// RNP 0.16 calls a signature dated after its clock "expired" before it says whether it is correct.
inline constexpr std::uint32_t kClockSkewSeconds = 86400;

struct RejectedKey {
  std::string fingerprint;  // "" when not even that could be read
  gpg_err_code_t code = GPG_ERR_INV_PACKET;
  std::string reason;  // one line
};

struct FilteredKey {
  std::string fingerprint;  // upper-case hex, 40 digits
  std::string packets;      // primary, direct signatures, user IDs, subkeys, each with its own
  // Why user IDs were dropped, for a precise refusal when none is left.
  std::size_t oversize_user_ids = 0;
  std::size_t largest_oversize_user_id = 0;
  // The estimated CPU (microseconds) of verifying its new self-signatures (verification_cost_us).
  std::uint64_t verify_cost_us = 0;
};

// The refusal of a key left without a valid self-signature; it names the oversize user ID that
// was dropped when that is why.
RejectedKey without_self_signature(const FilteredKey& key, const config::KeysConfig& limits);

struct FilterOutcome {
  std::vector<FilteredKey> keys;  // one per distinct primary key, in first-seen order
  std::vector<RejectedKey> rejected;
  // Keys refused for max_user_ids or max_subkeys that carry revocations by their primary key:
  // the primary key and each revoked component with those revocations only (not verified yet).
  std::vector<FilteredKey> revocations;
  // Signature packets standing before any key (a bare revocation certificate), as they came.
  std::string leading_signatures;
  bool secret_material = false;  // a secret key packet anywhere: callers refuse all of it
  bool any_packet = false;       // at least one well-framed OpenPGP packet was read
  std::size_t primaries = 0;     // distinct primary keys seen (kept or refused)
  std::uint64_t verify_cost_us = 0;  // the kept keys' verify_cost_us, summed
  // What was dropped, by reason: future_signature, misplaced_signature, malformed_signature, third_party_signature,
  // excess_signature, verification_budget, unbound_user_id, unbound_subkey, absurd_subkey, oversize_signature, oversize_user_id, oversize_subkey, other_packet,
  // malformed_packet (the input stopped framing: the rest was ignored).
  std::map<std::string, std::size_t> dropped;
};

// Never throws for bad input. Stops reading (and counts it) at `max_keys` distinct primaries:
// callers that refuse large counts learn the count without paying for the rest.
FilterOutcome filter_keys(std::string_view binary, const config::KeysConfig& limits,
                          std::size_t trusted_prefix = 0, std::size_t max_keys = SIZE_MAX);

// Why a v4 public key (or subkey) packet body's parameters are beyond what any implementation
// makes (an RSA exponent over 64 bits, a modulus over 16,384, a DSA prime over 4,096), or
// nullopt: such a key would make every verification cost seconds, so it is refused before any.
std::optional<std::string> absurd_key_parameters(std::string_view key_body);

// The estimated CPU (microseconds, one core) of verifying one signature with the key whose v4
// packet body this is: RSA by its modulus and exponent, DSA and ElGamal by their primes, the
// elliptic curves by size; 20 ms for anything unreadable. No mathematics, a scan of the MPIs.
std::uint64_t verification_cost_us(std::string_view key_body);

// The fingerprint (upper-case hex: 40 digits for v4, 64 for v6) of a public key packet body; ""
// for any other version.
std::string key_fingerprint(std::string_view key_body);

// What is wrong with keys.certifier_keys against keys.certifiers, path-qualified, one line each:
// a file that is not OpenPGP or holds secret key material, a listed certifier whose key it does
// not hold (its certifications could never verify). Empty when nothing is configured or all is
// well. The config layer cannot read OpenPGP, so the app asks this after loading a config.
std::vector<std::string> certifier_problems(const config::KeysConfig& keys);

// What the filter reads of a v3, v4 or v6 signature packet body (RFC 9580 section 5.2).
struct SignatureFacts {
  int version = 0;
  std::uint8_t type = 0;
  std::uint32_t created = 0;  // from the hashed area (v4, v6)
  std::string issuer_fpr;     // 20 (v4) or 32 (v6) raw bytes (issuer fingerprint), or empty
  std::string issuer_keyid;   // 8 raw bytes (issuer subpacket), or empty
  // Designated revokers (revocation key subpackets of the hashed area): 20 or 32 raw bytes each.
  std::vector<std::string> revokers;
  std::string issuer_keyid_hex() const;  // upper-case, from either; "" when neither
};
// nullopt for other versions and for a body that does not frame (truncated subpacket areas).
std::optional<SignatureFacts> read_signature(std::string_view body);

// The 64-bit key ID of a raw fingerprint: a v4 one's (20 bytes) last 8 bytes, a v6 one's (32)
// first 8.
std::string_view keyid_raw(std::string_view fpr_raw);
// Whether a signature names the key with this raw fingerprint as its issuer: by the issuer
// fingerprint when it carries one, else by the 64-bit key ID.
bool issued_by(const SignatureFacts& f, std::string_view fpr_raw);

// Splits a keyring export (armored, possibly several armor blocks, or binary) into binary chunks
// of at most `keys_per_chunk` transferable keys each, cutting before primary key packets, so a
// large export is parsed a chunk at a time (RNP holds every key of one parse in memory). Input
// the framer cannot split (not OpenPGP, partial lengths) comes back as one chunk, unchanged.
std::vector<std::string> keyring_chunks(std::string_view data, std::size_t keys_per_chunk);

// Bare revocation signatures (a revocation certificate, as gpg writes it: one signature packet,
// armored or binary, without the key): how many there are, and the distinct 64-bit key IDs
// (upper-case hex) of their issuers in first-seen order, so each issuer's key is verified once.
// nullopt when the input is not made of revocation signatures only.
struct BareRevocations {
  std::vector<std::string> issuers;
  std::size_t signatures = 0;
};
std::optional<BareRevocations> bare_revocations(std::string_view data);

}  // namespace hkpgw::hkp
