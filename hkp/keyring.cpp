#include "hkp/keyring.hpp"

#include <fcntl.h>
#include <rnp/rnp.h>
#include <rnp/rnp_err.h>
#include <unistd.h>

#include <algorithm>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <variant>

#include "hkp/armor.hpp"
#include "hkp/modern.hpp"
#include "hkp/modern_keyring.hpp"
#include "hkp/packets.hpp"

namespace hkpgw::hkp {
namespace {

// Why RNP could not read a key (a classic primary key: modern ones never reach RNP): a subkey
// with one of RFC 9580's new algorithms, named; else the generic line.
std::string unreadable_why(std::string_view packets) {
  const auto split = split_packets(packets);
  if (split) {
    for (const Packet& p : *split) {
      if (p.tag != tag::public_subkey) continue;
      const auto k = modern::parse_key(p.body);
      if (!k) continue;
      return "a subkey uses " + modern::algorithm_name(k->algorithm) + " (RFC 9580 algorithm " +
             std::to_string(k->algorithm) +
             ") under a classic primary key, which this gateway cannot verify yet";
    }
  }
  return "the key packets cannot be read";
}


struct RnpString {
  char* p = nullptr;
  ~RnpString() { rnp_buffer_destroy(p); }
  std::string str() const { return p ? std::string(p) : std::string(); }
};

// One owning handle type per RNP object, each freed by its own destroy function.
template <auto Destroy>
struct Destroyer {
  template <class T>
  void operator()(T* p) const { Destroy(p); }
};
template <class T, auto Destroy>
using Owned = std::unique_ptr<T, Destroyer<Destroy>>;
using Ffi = Owned<rnp_ffi_st, rnp_ffi_destroy>;
using KeyHandle = Owned<rnp_key_handle_st, rnp_key_handle_destroy>;
using UidHandle = Owned<rnp_uid_handle_st, rnp_uid_handle_destroy>;
using SigHandle = Owned<rnp_signature_handle_st, rnp_signature_handle_destroy>;
using Input = Owned<rnp_input_st, rnp_input_destroy>;
using Output = Owned<rnp_output_st, rnp_output_destroy>;

// RNP logs to stderr unless given a descriptor. It takes ownership of the one it is given
// (fdopen, then fclose when the ffi is destroyed), so every ffi gets its own duplicate of one
// /dev/null descriptor: handing it a shared one made RNP close descriptor numbers that the
// process had meanwhile reused for client sockets.
int devnull_fd() {
  static const int fd = ::open("/dev/null", O_WRONLY | O_CLOEXEC);
  return fd;
}

Ffi make_ffi() {
  rnp_ffi_t raw = nullptr;
  if (rnp_ffi_create(&raw, RNP_KEYSTORE_GPG, RNP_KEYSTORE_GPG) != RNP_SUCCESS) {
    return nullptr;
  }
  Ffi ffi(raw);
  // Verified as of tomorrow (kClockSkewSeconds): a signature made a little ahead of this clock
  // is not "expired" for that alone, so RNP says whether it is correct.
  rnp_set_timestamp(raw, static_cast<std::uint64_t>(std::time(nullptr)) + kClockSkewSeconds);
  if (devnull_fd() >= 0) {
    const int own = ::fcntl(devnull_fd(), F_DUPFD_CLOEXEC, 0);
    if (own >= 0 && rnp_ffi_set_log_fd(raw, own) != RNP_SUCCESS) ::close(own);
  }
  return ffi;
}

bool flag(rnp_result_t (*fn)(rnp_key_handle_t, bool*), rnp_key_handle_t key) {
  bool v = false;
  return fn(key, &v) == RNP_SUCCESS && v;
}

void read_basic(rnp_key_handle_t key, std::string& fpr, std::uint8_t& algo, std::uint32_t& bits,
                std::int64_t& created, std::int64_t& expires, bool& revoked) {
  RnpString f, alg;
  rnp_key_get_fprint(key, &f.p);
  fpr = f.str();
  rnp_key_get_alg(key, &alg.p);
  algo = algo_number(alg.str());
  std::uint32_t b = 0, c = 0, e = 0;
  rnp_key_get_bits(key, &b);
  rnp_key_get_creation(key, &c);
  rnp_key_get_expiration(key, &e);
  bits = b;
  created = c;
  expires = e == 0 ? 0 : static_cast<std::int64_t>(c) + e;
  revoked = flag(rnp_key_is_revoked, key);
}

// Calls fn(handle) for every user ID of `key`; fn may take ownership by moving the handle.
template <class F>
void each_uid(rnp_key_handle_t key, F fn) {
  std::size_t count = 0;
  rnp_key_get_uid_count(key, &count);
  for (std::size_t i = 0; i < count; ++i) {
    rnp_uid_handle_t raw = nullptr;
    if (rnp_key_get_uid_handle_at(key, i, &raw) != RNP_SUCCESS) continue;
    UidHandle uid(raw);
    fn(uid);
  }
}

// Calls fn(signature, signer key ID) for every signature on a user ID.
template <class F>
void each_uid_signature(rnp_uid_handle_t uid, F fn) {
  std::size_t count = 0;
  rnp_uid_get_signature_count(uid, &count);
  for (std::size_t s = 0; s < count; ++s) {
    rnp_signature_handle_t raw = nullptr;
    if (rnp_uid_get_signature_at(uid, s, &raw) != RNP_SUCCESS) continue;
    SigHandle sig(raw);
    RnpString signer;
    rnp_signature_get_keyid(raw, &signer.p);
    fn(raw, signer.str());
  }
}

// A signature RNP proved correct, whatever the key's state today. RNP validates on demand, so
// this also answers for a revoked primary key's subkey bindings, which its key validation skips.
// Only RNP_SUCCESS proves anything: RNP 0.16 answers "expired" (for a signature made after its
// clock, or past its own expiry time) before it looks at whether the signature is correct, so
// a forged binding dated tomorrow read as proven and bound a stranger's subkey.
bool proven(rnp_signature_handle_t sig) { return rnp_signature_is_valid(sig, 0) == RNP_SUCCESS; }

std::pair<bool, bool> valid_and_revoked(rnp_uid_handle_t uid) {
  bool valid = false, revoked = false;
  rnp_uid_is_valid(uid, &valid);
  rnp_uid_is_revoked(uid, &revoked);
  return {valid, revoked};
}

// Whether a subkey is the key's: RNP's verdict (valid, revoked or expired), or else a binding or
// subkey revocation by the primary key that verifies. RNP's verdict also asks whether the primary
// key is usable, so alone it dropped every subkey of a revoked key, and with them the lookups by
// a subkey's ID that a verifier makes (gpg --auto-key-retrieve asks for the signing subkey).
bool subkey_is_bound(rnp_key_handle_t sub, const std::string& primary_keyid) {
  if (flag(rnp_key_is_valid, sub) || flag(rnp_key_is_revoked, sub) ||
      flag(rnp_key_is_expired, sub)) {
    return true;
  }
  std::size_t count = 0;
  rnp_key_get_signature_count(sub, &count);
  for (std::size_t s = 0; s < count; ++s) {
    rnp_signature_handle_t raw = nullptr;
    if (rnp_key_get_signature_at(sub, s, &raw) != RNP_SUCCESS) continue;
    SigHandle sig(raw);
    RnpString signer;
    rnp_signature_get_keyid(raw, &signer.p);
    if (signer.str() == primary_keyid && proven(raw)) return true;
  }
  return false;
}

std::vector<UserId> read_uids(rnp_key_handle_t key, const std::string& primary_keyid) {
  std::vector<UserId> out;
  each_uid(key, [&](UidHandle& uid) {
    std::uint32_t type = 0;
    rnp_uid_get_type(uid.get(), &type);
    if (type != RNP_USER_ID) return;  // photo IDs are not listed in indexes
    const auto [valid, revoked] = valid_and_revoked(uid.get());
    // A user ID without a valid self-signature may be forged by anyone: never list it.
    if (!valid && !revoked) return;
    void* data = nullptr;
    std::size_t size = 0;
    if (rnp_uid_get_data(uid.get(), &data, &size) != RNP_SUCCESS) return;
    UserId u;
    u.text.assign(static_cast<const char*>(data), size);
    rnp_buffer_destroy(data);
    u.email = extract_email(u.text).value_or("");
    u.revoked = revoked;
    each_uid_signature(uid.get(), [&](rnp_signature_handle_t sig, const std::string& signer) {
      std::uint32_t when = 0;
      if (signer == primary_keyid && rnp_signature_get_creation(sig, &when) == RNP_SUCCESS) {
        u.created = std::max<std::int64_t>(u.created, when);
      }
    });
    out.push_back(std::move(u));
  });
  return out;
}

std::string export_public(rnp_key_handle_t key) {
  rnp_output_t raw = nullptr;
  if (rnp_output_to_memory(&raw, 0) != RNP_SUCCESS) return {};
  Output out(raw);
  if (rnp_key_export(key, raw, RNP_KEY_EXPORT_PUBLIC | RNP_KEY_EXPORT_SUBKEYS) != RNP_SUCCESS) {
    return {};
  }
  std::uint8_t* buf = nullptr;
  std::size_t len = 0;
  if (rnp_output_memory_get_buf(raw, &buf, &len, false) != RNP_SUCCESS) return {};
  return std::string(reinterpret_cast<const char*>(buf), len);
}

// Which signatures go, decided here rather than by RNP's flags: in RNP 0.16,
// RNP_KEY_SIGNATURE_INVALID also matches self-signatures it has not validated yet, and
// RNP_KEY_SIGNATURE_NON_SELF_SIG matched self-signatures too. Asking with every flag offers each
// signature (on the primary key, its user IDs and its subkeys) to this callback. A signature by
// the primary key stays only when RNP proved it valid (an expired one is still a correct
// signature); one RNP did not or could not check goes too, since anyone can write the primary
// key's ID into a packet. Other keys' signatures were already placed and chosen by filter_keys
// (its third-party policy): one by a configured certifier stays only when RNP proves it with the
// certifier's key (imported beside the key); the others (a designated revoker's revocation, or
// any under `keep`) RNP cannot check without their issuers' keys, so they stay.
struct SigPolicy {
  std::string primary_keyid;
  std::vector<std::string> certifier_keyids;
  std::size_t invalid = 0;
};

void decide_signature(rnp_ffi_t, void* ctx, rnp_signature_handle_t sig, std::uint32_t* action) {
  auto& p = *static_cast<SigPolicy*>(ctx);
  RnpString signer;
  rnp_signature_get_keyid(sig, &signer.p);
  *action = RNP_KEY_SIGNATURE_KEEP;
  const std::string id = signer.str();
  if (id != p.primary_keyid && std::find(p.certifier_keyids.begin(), p.certifier_keyids.end(),
                                         id) == p.certifier_keyids.end()) {
    return;
  }
  if (!proven(sig)) {
    ++p.invalid;
    *action = RNP_KEY_SIGNATURE_REMOVE;
  }
}

// Cleaning with RNP, in place: signatures by the primary key that RNP does not prove valid, user
// IDs and subkeys that no valid signature by the primary key binds. One rule whatever the
// primary key's state: cleaning asks whether a signature is correct, never whether the key is
// usable today (a revoked key is served whole, so clients learn it is revoked). Counts what it
// removed in `dropped`.
void clean(rnp_key_handle_t key, const std::string& primary_keyid,
           const std::vector<std::string>& certifiers,
           std::map<std::string, std::size_t>& dropped) {
  // Decided before anything is removed: RNP does not recompute validity after a removal. For a
  // user ID, RNP's own verdict (a certification or revocation by the primary key verifies on it),
  // which does not ask whether the key is usable today; a signature handle would not do, as RNP
  // folds identical signatures and a copy under a forged user ID reads as valid through it.
  std::vector<UidHandle> forged;
  each_uid(key, [&](UidHandle& uid) {
    const auto [valid, revoked] = valid_and_revoked(uid.get());
    if (!valid && !revoked) forged.push_back(std::move(uid));
  });
  std::vector<KeyHandle> unbound;
  std::size_t subs = 0;
  rnp_key_get_subkey_count(key, &subs);
  for (std::size_t i = 0; i < subs; ++i) {
    rnp_key_handle_t raw = nullptr;
    if (rnp_key_get_subkey_at(key, i, &raw) != RNP_SUCCESS) continue;
    KeyHandle sub(raw);
    if (!subkey_is_bound(raw, primary_keyid)) {
      unbound.push_back(std::move(sub));  // not provably this key's subkey
    }
  }
  // Last first: a user ID handle names its position, and removing one moves those after it, so
  // removing front to back took the wrong user IDs (a valid one went, a forged one stayed:
  // found by fuzz_keys).
  for (auto uid = forged.rbegin(); uid != forged.rend(); ++uid) {
    if (rnp_uid_remove(key, uid->get()) == RNP_SUCCESS) ++dropped["invalid_user_id"];
  }
  for (auto& sub : unbound) {
    if (rnp_key_remove(sub.get(), RNP_KEY_REMOVE_PUBLIC) == RNP_SUCCESS) ++dropped["invalid_subkey"];
  }
  SigPolicy policy{primary_keyid, {}};
  for (const auto& fpr : certifiers) policy.certifier_keyids.push_back(fpr.substr(24));
  rnp_key_remove_signatures(key,
                            RNP_KEY_SIGNATURE_INVALID | RNP_KEY_SIGNATURE_UNKNOWN_KEY |
                                RNP_KEY_SIGNATURE_NON_SELF_SIG,
                            decide_signature, &policy);
  if (policy.invalid) dropped["invalid_signature"] += policy.invalid;
}

ParseOutcome parse_binary(std::string_view binary, const config::KeysConfig& limits,
                          std::size_t trusted_prefix, std::size_t max_keys, int depth,
                          VerifyBudget budget = VerifyBudget::unbounded);

std::size_t total(const std::map<std::string, std::size_t>& m) {
  std::size_t n = 0;
  for (const auto& [k, v] : m) n += v;
  return n;
}

// Builds the ParsedKey for one primary key, or says why it is refused. `modified`: cleaning
// removed something, so what RNP says about the key now may be stale (it does not revalidate
// after removals); the caller parses the exported packets again.
std::variant<ParsedKey, RejectedKey> take_primary(rnp_key_handle_t key, const FilteredKey& filtered,
                                                   const config::KeysConfig& limits,
                                                   std::map<std::string, std::size_t>& dropped,
                                                   bool& modified) {
  ParsedKey pk;
  KeyInfo& info = pk.info;
  read_basic(key, info.fingerprint, info.algo, info.bits, info.created, info.expires,
             info.revoked);
  if (info.fingerprint.size() != 40) {
    return RejectedKey{info.fingerprint, GPG_ERR_UNKNOWN_VERSION, "only v4 keys are supported"};
  }
  info.version = 4;
  if (!flag(rnp_key_is_valid, key) && !info.revoked && !flag(rnp_key_is_expired, key)) {
    RejectedKey refused = without_self_signature(filtered, limits);
    refused.fingerprint = info.fingerprint;
    return refused;
  }
  const std::size_t dropped_before = total(dropped);
  clean(key, info.keyid(), limits.certifiers, dropped);
  modified = total(dropped) != dropped_before;
  pk.packets = export_public(key);
  if (pk.packets.empty()) {
    return RejectedKey{info.fingerprint, GPG_ERR_INV_PACKET, "the key could not be exported"};
  }
  if (pk.packets.size() > limits.max_key_bytes) {
    return RejectedKey{info.fingerprint, GPG_ERR_TOO_LARGE,
                       "key is " + std::to_string(pk.packets.size()) + " bytes, over max_key_bytes (" +
                           std::to_string(limits.max_key_bytes) + ")"};
  }
  info.uids = read_uids(key, info.keyid());
  std::size_t count = 0;
  rnp_key_get_subkey_count(key, &count);
  for (std::size_t i = 0; i < count; ++i) {
    rnp_key_handle_t raw = nullptr;
    if (rnp_key_get_subkey_at(key, i, &raw) != RNP_SUCCESS) continue;
    KeyHandle sub(raw);
    Subkey s;
    read_basic(raw, s.fingerprint, s.algo, s.bits, s.created, s.expires, s.revoked);
    info.subkeys.push_back(std::move(s));
  }
  return pk;
}

// Public keys (armored or binary) into `ffi`, read permissively (a bad packet skips one key, not
// the rest).
rnp_result_t import_public_keys(rnp_ffi_t ffi, std::string_view data) {
  rnp_input_t raw = nullptr;
  const rnp_result_t opened = rnp_input_from_memory(
      &raw, reinterpret_cast<const std::uint8_t*>(data.data()), data.size(), false);
  if (opened != RNP_SUCCESS) return opened;
  Input in(raw);
  RnpString results;
  return rnp_import_keys(ffi, raw, RNP_LOAD_SAVE_PUBLIC_KEYS | RNP_LOAD_SAVE_PERMISSIVE,
                         &results.p);
}

// The operator's certifier keys (keys.certifier_keys), beside the key being verified, so RNP can
// prove their certifications on it (decide_signature). Not when the key is one of them: its
// copy from the file would be merged into the one being verified.
void import_certifiers(rnp_ffi_t ffi, const std::string& fingerprint,
                       const config::KeysConfig& limits) {
  const auto& list = limits.certifiers;
  if (!limits.certifier_key_data.empty() &&
      std::find(list.begin(), list.end(), fingerprint) == list.end()) {
    import_public_keys(ffi, limits.certifier_key_data);
  }
}

// One filtered key through RNP: verification and cleaning, then the facts. A key cleaning changed
// is looked at again (depth + 1) until cleaning leaves it as it is, at most kMaxCleanRounds
// times: what is kept must stand alone (fuzz_keys found a key whose once-cleaned packets held a
// user ID without its signature and no valid self-signature any more).
constexpr int kMaxCleanRounds = 3;
void verify_key(const FilteredKey& fk, const config::KeysConfig& limits, int depth,
                ParseOutcome& out) {
  if (is_modern_key(fk.packets)) {  // RNP 0.16 cannot read it: hkp/modern verifies it
    auto taken = clean_modern_key(fk, limits, out.dropped);
    if (auto* rejected = std::get_if<RejectedKey>(&taken)) {
      out.rejected.push_back(std::move(*rejected));
    } else {
      out.keys.push_back(std::move(std::get<ParsedKey>(taken)));
    }
    return;
  }
  Ffi ffi = make_ffi();
  if (!ffi) {
    out.rejected.push_back({fk.fingerprint, GPG_ERR_INTERNAL, "the OpenPGP library is unavailable"});
    return;
  }
  const rnp_result_t imported = import_public_keys(ffi.get(), fk.packets);
  import_certifiers(ffi.get(), fk.fingerprint, limits);
  rnp_key_handle_t raw = nullptr;
  if (imported != RNP_SUCCESS ||
      rnp_locate_key(ffi.get(), "fingerprint", fk.fingerprint.c_str(), &raw) != RNP_SUCCESS ||
      !raw) {
    out.rejected.push_back({fk.fingerprint, GPG_ERR_INV_PACKET, unreadable_why(fk.packets)});
    return;
  }
  KeyHandle key(raw);
  bool modified = false;
  auto taken = take_primary(raw, fk, limits, out.dropped, modified);
  if (auto* rejected = std::get_if<RejectedKey>(&taken)) {
    out.rejected.push_back(std::move(*rejected));
    return;
  }
  auto& pk = std::get<ParsedKey>(taken);
  if (!modified) {
    out.keys.push_back(std::move(pk));
    return;
  }
  if (depth >= kMaxCleanRounds) {
    out.rejected.push_back({pk.info.fingerprint, GPG_ERR_BAD_SIGNATURE,
                            "cleaning does not leave a key that stands on its own"});
    return;
  }
  // Parse the cleaned key again: validity and facts may have changed.
  ParseOutcome again = parse_binary(pk.packets, limits, 0, SIZE_MAX, depth + 1);
  for (auto& k : again.keys) {
    if (k.info.fingerprint == pk.info.fingerprint) out.keys.push_back(std::move(k));
  }
  for (auto& r : again.rejected) out.rejected.push_back(std::move(r));
  for (const auto& [reason, n] : again.dropped) out.dropped[reason] += n;
}

ParseOutcome parse_binary(std::string_view binary, const config::KeysConfig& limits,
                          std::size_t trusted_prefix, std::size_t max_keys, int depth,
                          VerifyBudget budget) {
  ParseOutcome out;
  FilterOutcome f = filter_keys(binary, limits, trusted_prefix, max_keys);
  out.secret_material = f.secret_material;
  out.not_openpgp = !f.any_packet;
  out.key_count = f.primaries;
  out.dropped = std::move(f.dropped);
  out.rejected = std::move(f.rejected);
  out.revocations = std::move(f.revocations);
  out.verify_cost_us = f.verify_cost_us;
  if (out.secret_material || f.primaries > max_keys) return out;
  const std::uint64_t allowed =
      budget == VerifyBudget::unbounded
          ? UINT64_MAX
          : static_cast<std::uint64_t>(limits.verify_budget_per_submission.count()) * 1000;
  if (budget == VerifyBudget::all_or_nothing && f.verify_cost_us > allowed) {
    out.over_budget_keys = f.keys.size();
    return out;
  }
  std::uint64_t spent = 0;
  for (const auto& fk : f.keys) {
    if (fk.verify_cost_us > allowed - spent) {  // the rest of an answer, not looked at
      ++out.over_budget_keys;
      continue;
    }
    spent += fk.verify_cost_us;
    verify_key(fk, limits, depth, out);
  }
  if (out.over_budget_keys) out.dropped["verification_budget_key"] += out.over_budget_keys;
  return out;
}

}  // namespace

ParseOutcome parse_keys(std::string_view data, const config::KeysConfig& limits,
                        std::size_t max_keys, VerifyBudget budget) {
  auto decoded = dearmor(data);
  if (!decoded) {
    ParseOutcome out;
    out.bad_input = decoded.error();
    return out;
  }
  if (decoded->private_block) {
    ParseOutcome out;
    out.secret_material = true;
    return out;
  }
  return parse_binary(decoded->binary, limits, 0, max_keys, 0, budget);
}

namespace {

// The same packets, in any order (RNP may order a merged key's signatures differently).
bool same_packets(std::string_view a, std::string_view b) {
  if (a == b) return true;
  auto pa = split_packets(a), pb = split_packets(b);
  if (!pa || !pb || pa->size() != pb->size()) return false;
  std::vector<std::string_view> va, vb;
  for (const auto& p : *pa) va.push_back(p.whole);
  for (const auto& p : *pb) vb.push_back(p.whole);
  std::sort(va.begin(), va.end());
  std::sort(vb.begin(), vb.end());
  return va == vb;
}

// The key `fingerprint` of a parse of a cached copy with something added, and whether it is more
// than the cached copy; nullopt when the parse refused it.
std::optional<MergeResult> merged_result(ParseOutcome& parsed, const std::string& fingerprint,
                                         std::string_view cached) {
  for (auto& k : parsed.keys) {
    if (k.info.fingerprint == fingerprint) {
      const bool changed = !same_packets(k.packets, cached);
      return MergeResult{std::move(k), changed};
    }
  }
  return std::nullopt;
}

}  // namespace

std::optional<MergeResult> merge_key(std::string_view cached, std::string_view incoming,
                                     const std::string& fingerprint,
                                     const config::KeysConfig& limits) {
  std::string both;
  both.reserve(cached.size() + incoming.size());
  both += cached;
  both += incoming;
  // filter_keys folds the two copies into one; the cached one's signatures are trusted (never
  // dropped for a budget), the incoming ones are checked like any upload.
  ParseOutcome merged = parse_binary(both, limits, cached.size(), SIZE_MAX, 0);
  if (auto result = merged_result(merged, fingerprint, cached)) return result;
  // Refused whole: the cached copy gains the incoming copy's revocations and nothing else.
  for (const auto& rev : merged.revocations) {
    if (rev.fingerprint != fingerprint) continue;
    both.assign(cached);
    both += rev.packets;
    ParseOutcome revoked = parse_binary(both, limits, cached.size(), SIZE_MAX, 0);
    return merged_result(revoked, fingerprint, cached);
  }
  return std::nullopt;
}

std::optional<MergeResult> apply_signatures(std::string_view cached, std::string_view signatures,
                                            const std::string& fingerprint,
                                            const config::KeysConfig& limits) {
  if (is_modern_key(cached)) {
    // The signatures after another copy of the primary key, which filter_keys folds into the
    // cached one: they land in its direct slot (a key revocation, what a revocation certificate
    // holds) and are verified like any. A subkey's or user ID's revocation would stand there
    // misplaced: those come with the key.
    const auto decoded = dearmor(signatures);
    const auto primary = first_packet(cached);
    if (!decoded || !primary) return std::nullopt;
    std::string both(cached);
    both += primary->whole;
    both += decoded->binary;
    ParseOutcome parsed = parse_binary(both, limits, cached.size(), SIZE_MAX, 0);
    return merged_result(parsed, fingerprint, cached);
  }
  Ffi ffi = make_ffi();
  if (!ffi) return std::nullopt;
  auto import = [&](std::string_view data, bool keys) {
    rnp_input_t raw = nullptr;
    if (rnp_input_from_memory(&raw, reinterpret_cast<const std::uint8_t*>(data.data()),
                              data.size(), false) != RNP_SUCCESS) {
      return false;
    }
    Input in(raw);
    RnpString results;
    return (keys ? rnp_import_keys(ffi.get(), raw, RNP_LOAD_SAVE_PUBLIC_KEYS, &results.p)
                 : rnp_import_signatures(ffi.get(), raw, 0, &results.p)) == RNP_SUCCESS;
  };
  if (!import(cached, true) || !import(signatures, false)) return std::nullopt;
  rnp_key_handle_t raw = nullptr;
  if (rnp_locate_key(ffi.get(), "fingerprint", fingerprint.c_str(), &raw) != RNP_SUCCESS || !raw) {
    return std::nullopt;
  }
  KeyHandle key(raw);
  const std::string exported = export_public(raw);
  // Cleaned and read back like any other key.
  ParseOutcome parsed = parse_keys(exported, limits);
  return merged_result(parsed, fingerprint, cached);
}

}  // namespace hkpgw::hkp
