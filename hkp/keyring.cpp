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

#include "hkp/packets.hpp"

namespace hkpgw::hkp {
namespace {

// Upper bound on keys taken from one body: an upload or a keyring export is small; a larger
// count is an attack or a mistake.
constexpr int kMaxKeysPerInput = 100'000;

struct RnpString {
  char* p = nullptr;
  ~RnpString() { rnp_buffer_destroy(p); }
  std::string str() const { return p ? std::string(p) : std::string(); }
};

struct FfiDeleter {
  void operator()(rnp_ffi_st* f) const { rnp_ffi_destroy(f); }
};
struct KeyDeleter {
  void operator()(rnp_key_handle_st* k) const { rnp_key_handle_destroy(k); }
};
struct UidDeleter {
  void operator()(rnp_uid_handle_st* u) const { rnp_uid_handle_destroy(u); }
};
struct SigDeleter {
  void operator()(rnp_signature_handle_st* s) const { rnp_signature_handle_destroy(s); }
};
struct InputDeleter {
  void operator()(rnp_input_st* i) const { rnp_input_destroy(i); }
};
struct OutputDeleter {
  void operator()(rnp_output_st* o) const { rnp_output_destroy(o); }
};
using Ffi = std::unique_ptr<rnp_ffi_st, FfiDeleter>;
using KeyHandle = std::unique_ptr<rnp_key_handle_st, KeyDeleter>;
using UidHandle = std::unique_ptr<rnp_uid_handle_st, UidDeleter>;
using SigHandle = std::unique_ptr<rnp_signature_handle_st, SigDeleter>;
using Input = std::unique_ptr<rnp_input_st, InputDeleter>;
using Output = std::unique_ptr<rnp_output_st, OutputDeleter>;

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

std::pair<bool, bool> valid_and_revoked(rnp_uid_handle_t uid) {
  bool valid = false, revoked = false;
  rnp_uid_is_valid(uid, &valid);
  rnp_uid_is_revoked(uid, &revoked);
  return {valid, revoked};
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
// signature to this callback, which removes a self-signature only when it verifies as invalid
// and a third-party one only under the stripping policy.
struct SigPolicy {
  std::string primary_keyid;
  bool strip_third_party = false;
  std::size_t invalid = 0, third_party = 0;
};

void decide_signature(rnp_ffi_t, void* ctx, rnp_signature_handle_t sig, std::uint32_t* action) {
  auto& p = *static_cast<SigPolicy*>(ctx);
  RnpString signer;
  rnp_signature_get_keyid(sig, &signer.p);
  *action = RNP_KEY_SIGNATURE_KEEP;
  if (signer.str() != p.primary_keyid) {
    if (p.strip_third_party) {
      ++p.third_party;
      *action = RNP_KEY_SIGNATURE_REMOVE;
    }
  } else if (rnp_signature_is_valid(sig, 0) == RNP_ERROR_SIGNATURE_INVALID) {
    ++p.invalid;
    *action = RNP_KEY_SIGNATURE_REMOVE;
  }
}

std::size_t count_third_party(rnp_key_handle_t key, const std::string& primary_keyid) {
  std::size_t n = 0;
  each_uid(key, [&](UidHandle& uid) {
    each_uid_signature(uid.get(), [&](rnp_signature_handle_t, const std::string& signer) {
      n += signer != primary_keyid;
    });
  });
  return n;
}

// Cleaning with RNP, in place: signatures that RNP can prove invalid, user IDs without a valid
// (or revoking) self-signature, subkeys without a valid binding, and third-party certifications
// per policy. Counts what it removed in `dropped`.
void clean(rnp_key_handle_t key, const std::string& primary_keyid, const config::KeysConfig& limits,
           std::map<std::string, std::size_t>& dropped) {
  // Validity is read before anything is removed: RNP does not recompute it after a removal.
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
    if (!flag(rnp_key_is_valid, raw) && !flag(rnp_key_is_revoked, raw) &&
        !flag(rnp_key_is_expired, raw)) {
      unbound.push_back(std::move(sub));  // no valid binding: not provably this key's subkey
    }
  }
  for (auto& uid : forged) {
    if (rnp_uid_remove(key, uid.get()) == RNP_SUCCESS) ++dropped["invalid_user_id"];
  }
  for (auto& sub : unbound) {
    if (rnp_key_remove(sub.get(), RNP_KEY_REMOVE_PUBLIC) == RNP_SUCCESS) ++dropped["invalid_subkey"];
  }
  using config::ThirdPartySigs;
  SigPolicy policy{primary_keyid};
  policy.strip_third_party = limits.third_party_sigs == ThirdPartySigs::strip;
  if (limits.third_party_sigs == ThirdPartySigs::strip_if_oversize) {
    // A flood (the 2019 keyserver attack: thousands of certifications) or a key over the size
    // limit loses its third-party certifications and stays usable.
    policy.strip_third_party = count_third_party(key, primary_keyid) > limits.max_third_party_sigs ||
                               export_public(key).size() > limits.max_key_bytes;
  }
  rnp_key_remove_signatures(key,
                            RNP_KEY_SIGNATURE_INVALID | RNP_KEY_SIGNATURE_UNKNOWN_KEY |
                                RNP_KEY_SIGNATURE_NON_SELF_SIG,
                            decide_signature, &policy);
  if (policy.invalid) dropped["invalid_signature"] += policy.invalid;
  if (policy.third_party) dropped["third_party_signature"] += policy.third_party;
}

// Per-packet limits on an exported key: an oversize signature is dropped; an oversize user ID,
// photo or subkey is dropped with the signatures that follow it. Returns the packets without
// them, or nullopt when nothing was over a limit. Throws nothing; `reject` is set when the
// primary key packet itself is over the limit.
std::optional<std::string> drop_oversize_packets(std::string_view packets,
                                                 const config::KeysConfig& limits,
                                                 std::map<std::string, std::size_t>& dropped,
                                                 bool& reject) {
  auto split = split_packets(packets);
  if (!split) return std::nullopt;  // RNP's own export: cannot happen; keep it as it is
  std::string out;
  bool any = false, skipping = false;
  for (const auto& p : *split) {
    if (p.tag == tag::signature) {
      if (skipping) continue;
      if (p.whole.size() > limits.max_sig_packet_bytes) {
        ++dropped["oversize_signature"];
        any = true;
        continue;
      }
      out += p.whole;
      continue;
    }
    skipping = false;
    if (p.whole.size() > limits.max_packet_bytes) {
      if (p.tag == tag::public_key) {
        reject = true;
        return std::nullopt;
      }
      ++dropped[p.tag == tag::public_subkey ? "oversize_subkey" : "oversize_user_id"];
      any = skipping = true;
      continue;
    }
    out += p.whole;
  }
  if (!any) return std::nullopt;
  return out;
}

// Builds the ParsedKey for one primary key, or says why it is refused.
std::size_t total(const std::map<std::string, std::size_t>& m) {
  std::size_t n = 0;
  for (const auto& [k, v] : m) n += v;
  return n;
}

// `modified`: cleaning removed something, so what RNP says about the key now may be stale
// (it does not revalidate after removals); the caller parses the exported packets again.
std::variant<ParsedKey, RejectedKey> take_primary(rnp_key_handle_t key,
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
    return RejectedKey{info.fingerprint, GPG_ERR_BAD_SIGNATURE,
                       "the primary key has no valid self-signature"};
  }
  const std::size_t dropped_before = total(dropped);
  clean(key, info.keyid(), limits, dropped);
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

}  // namespace

namespace {

// depth 1 = the second look at a key cleaning changed; it never recurses further.
ParseOutcome parse_keys_at(std::string_view data, const config::KeysConfig& limits, int depth) {
  ParseOutcome out;
  Ffi ffi = make_ffi();
  rnp_input_t in_raw = nullptr;
  if (!ffi || rnp_input_from_memory(&in_raw, reinterpret_cast<const std::uint8_t*>(data.data()),
                                    data.size(), false) != RNP_SUCCESS) {
    out.not_openpgp = true;
    return out;
  }
  Input in(in_raw);
  const std::uint32_t flags = RNP_LOAD_SAVE_PUBLIC_KEYS | RNP_LOAD_SAVE_SECRET_KEYS |
                              RNP_LOAD_SAVE_SINGLE | RNP_LOAD_SAVE_PERMISSIVE;
  bool any_read = false;
  for (int i = 0; i < kMaxKeysPerInput; ++i) {
    RnpString results;
    const rnp_result_t r = rnp_import_keys(ffi.get(), in_raw, flags, &results.p);
    if (r != RNP_SUCCESS) {
      break;  // RNP_ERROR_EOF at the end, or a stream RNP cannot read further
    }
    any_read = true;
  }
  std::size_t secret_count = 0;
  rnp_get_secret_key_count(ffi.get(), &secret_count);
  out.secret_material = secret_count > 0;
  if (out.secret_material) {
    return out;  // the caller refuses the whole input; nothing of it is looked at further
  }

  rnp_identifier_iterator_t it = nullptr;
  if (rnp_identifier_iterator_create(ffi.get(), &it, "fingerprint") != RNP_SUCCESS) {
    out.not_openpgp = !any_read;
    return out;
  }
  std::vector<std::string> fingerprints;
  for (const char* id = nullptr; rnp_identifier_iterator_next(it, &id) == RNP_SUCCESS && id;) {
    fingerprints.emplace_back(id);
  }
  rnp_identifier_iterator_destroy(it);

  std::set<std::string> seen;
  for (const auto& fpr : fingerprints) {
    if (!seen.insert(fpr).second) continue;
    rnp_key_handle_t raw = nullptr;
    if (rnp_locate_key(ffi.get(), "fingerprint", fpr.c_str(), &raw) != RNP_SUCCESS || !raw) {
      continue;
    }
    KeyHandle key(raw);
    if (!flag(rnp_key_is_primary, raw)) {
      RnpString primary;
      if (rnp_key_get_primary_fprint(raw, &primary.p) != RNP_SUCCESS || !primary.p) {
        out.rejected.push_back(
            {fpr, GPG_ERR_NO_PUBKEY, "subkey without its primary key (upload the whole key)"});
      }
      continue;
    }
    bool modified = false;
    auto taken = take_primary(raw, limits, out.dropped, modified);
    if (auto* pk = std::get_if<ParsedKey>(&taken)) {
      bool reject = false;
      auto smaller = drop_oversize_packets(pk->packets, limits, out.dropped, reject);
      if (reject) {
        out.rejected.push_back({fpr, GPG_ERR_TOO_LARGE,
                                "the primary key packet is over max_packet_bytes (" +
                                    std::to_string(limits.max_packet_bytes) + ")"});
      } else if ((smaller || modified) && depth == 0) {
        // Parse the cleaned key again: validity and facts may have changed.
        ParseOutcome again = parse_keys_at(smaller ? *smaller : pk->packets, limits, depth + 1);
        for (auto& k : again.keys) {
          if (k.info.fingerprint == pk->info.fingerprint) out.keys.push_back(std::move(k));
        }
        for (auto& r : again.rejected) out.rejected.push_back(std::move(r));
        for (const auto& [reason, n] : again.dropped) out.dropped[reason] += n;
      } else {
        if (smaller) pk->packets = std::move(*smaller);
        out.keys.push_back(std::move(*pk));
      }
    } else {
      out.rejected.push_back(std::get<RejectedKey>(std::move(taken)));
    }
  }
  out.not_openpgp = fingerprints.empty() && !any_read;
  return out;
}

}  // namespace

ParseOutcome parse_keys(std::string_view data, const config::KeysConfig& limits) {
  return parse_keys_at(data, limits, 0);
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

}  // namespace

std::optional<MergeResult> merge_key(std::string_view cached, std::string_view incoming,
                                     const std::string& fingerprint,
                                     const config::KeysConfig& limits) {
  std::string both;
  both.reserve(cached.size() + incoming.size());
  both += cached;
  both += incoming;
  // RNP merges every copy of a key it imports into one ffi.
  ParseOutcome merged = parse_keys(both, limits);
  for (auto& k : merged.keys) {
    if (k.info.fingerprint == fingerprint) {
      const bool changed = !same_packets(k.packets, cached);
      return MergeResult{std::move(k), changed};
    }
  }
  return std::nullopt;
}

namespace {

// Binary OpenPGP data: armored input is dearmored with RNP, binary passes through.
std::optional<std::string> dearmored(std::string_view data) {
  if (data.find("-----BEGIN PGP") == std::string_view::npos) return std::string(data);
  rnp_input_t in_raw = nullptr;
  if (rnp_input_from_memory(&in_raw, reinterpret_cast<const std::uint8_t*>(data.data()),
                            data.size(), false) != RNP_SUCCESS) {
    return std::nullopt;
  }
  Input in(in_raw);
  rnp_output_t out_raw = nullptr;
  if (rnp_output_to_memory(&out_raw, 0) != RNP_SUCCESS) return std::nullopt;
  Output out(out_raw);
  if (rnp_dearmor(in_raw, out_raw) != RNP_SUCCESS) return std::nullopt;
  std::uint8_t* buf = nullptr;
  std::size_t len = 0;
  if (rnp_output_memory_get_buf(out_raw, &buf, &len, false) != RNP_SUCCESS) return std::nullopt;
  return std::string(reinterpret_cast<const char*>(buf), len);
}

// Subpackets of a v4 signature area: calls fn(type, data) for each. False when malformed.
template <class F>
bool each_subpacket(std::string_view area, F fn) {
  std::size_t at = 0;
  while (at < area.size()) {
    const auto c0 = static_cast<std::uint8_t>(area[at]);
    std::size_t len = 0, hdr = 0;
    if (c0 < 192) {
      len = c0;
      hdr = 1;
    } else if (c0 < 255) {
      if (at + 1 >= area.size()) return false;
      len = ((c0 - 192) << 8) + static_cast<std::uint8_t>(area[at + 1]) + 192;
      hdr = 2;
    } else {
      if (at + 4 >= area.size()) return false;
      for (int i = 1; i <= 4; ++i) len = (len << 8) | static_cast<std::uint8_t>(area[at + i]);
      hdr = 5;
    }
    if (len == 0 || at + hdr + len > area.size()) return false;
    fn(static_cast<std::uint8_t>(area[at + hdr]) & 0x7F, area.substr(at + hdr + 1, len - 1));
    at += hdr + len;
  }
  return true;
}

std::string hex_upper(std::string_view bytes) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : bytes) {
    out.push_back(kHex[c >> 4]);
    out.push_back(kHex[c & 15]);
  }
  return out;
}

}  // namespace

std::vector<std::string> keyring_chunks(std::string_view data, std::size_t keys_per_chunk) {
  // Dearmor every block (gpg --export -a writes one; concatenated exports have several).
  std::string binary;
  constexpr std::string_view kBegin = "-----BEGIN PGP", kEnd = "-----END PGP";
  if (data.find(kBegin) == std::string_view::npos) {
    binary = std::string(data);
  } else {
    for (std::size_t at = data.find(kBegin); at != std::string_view::npos; at = data.find(kBegin, at)) {
      const auto end_marker = data.find(kEnd, at);
      if (end_marker == std::string_view::npos) return {std::string(data)};
      const auto line_end = data.find('\n', end_marker);
      const auto stop = line_end == std::string_view::npos ? data.size() : line_end + 1;
      auto block = dearmored(data.substr(at, stop - at));
      if (!block) return {std::string(data)};
      binary += *block;
      at = stop;
    }
  }
  const auto packets = split_packets(binary);
  if (!packets) return {std::string(data)};
  std::vector<std::string> chunks;
  std::string current;
  std::size_t keys = 0;
  for (const auto& p : *packets) {
    if (p.tag == tag::public_key || p.tag == tag::secret_key) {  // secret: refused later, whole
      if (keys == keys_per_chunk) {
        chunks.push_back(std::move(current));
        current.clear();
        keys = 0;
      }
      ++keys;
    }
    current += p.whole;
  }
  if (!current.empty()) chunks.push_back(std::move(current));
  return chunks;
}

std::optional<std::vector<std::string>> bare_revocation_issuers(std::string_view data) {
  const auto binary = dearmored(data);
  if (!binary) return std::nullopt;
  const auto packets = split_packets(*binary);
  if (!packets || packets->empty()) return std::nullopt;
  std::vector<std::string> issuers;
  for (const auto& p : *packets) {
    const std::string_view b = p.body;
    // v4 only: version, type, pk algo, hash algo, hashed area, unhashed area.
    if (p.tag != tag::signature || b.size() < 6 || b[0] != 4) return std::nullopt;
    const auto type = static_cast<std::uint8_t>(b[1]);
    if (type != 0x20 && type != 0x28 && type != 0x30) return std::nullopt;  // revocations only
    const std::size_t hashed = (static_cast<std::uint8_t>(b[4]) << 8) | static_cast<std::uint8_t>(b[5]);
    if (6 + hashed + 2 > b.size()) return std::nullopt;
    const std::size_t unhashed = (static_cast<std::uint8_t>(b[6 + hashed]) << 8) |
                                 static_cast<std::uint8_t>(b[7 + hashed]);
    if (8 + hashed + unhashed > b.size()) return std::nullopt;
    std::string issuer;
    auto look = [&](int t, std::string_view d) {
      if (t == 33 && d.size() == 21 && d[0] == 4) issuer = hex_upper(d.substr(13));  // fpr
      if (t == 16 && d.size() == 8 && issuer.empty()) issuer = hex_upper(d);           // key ID
    };
    if (!each_subpacket(b.substr(6, hashed), look) ||
        !each_subpacket(b.substr(8 + hashed, unhashed), look) || issuer.empty()) {
      return std::nullopt;
    }
    issuers.push_back(std::move(issuer));
  }
  return issuers;
}

std::optional<MergeResult> apply_signatures(std::string_view cached, std::string_view signatures,
                                            const std::string& fingerprint,
                                            const config::KeysConfig& limits) {
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
  for (auto& k : parse_keys(exported, limits).keys) {
    if (k.info.fingerprint == fingerprint) {
      const bool changed = !same_packets(k.packets, cached);
      return MergeResult{std::move(k), changed};
    }
  }
  return std::nullopt;
}

std::string armor_public_keys(std::string_view packets) {
  static constexpr char kB64[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  // CRC-24 of RFC 4880 section 6.1.
  std::uint32_t crc = 0xB704CEu;
  for (unsigned char c : packets) {
    crc ^= static_cast<std::uint32_t>(c) << 16;
    for (int i = 0; i < 8; ++i) {
      crc <<= 1;
      if (crc & 0x1000000u) crc ^= 0x1864CFBu;
    }
  }
  crc &= 0xFFFFFFu;

  auto encode3 = [&](std::string& out, const unsigned char* p, std::size_t n) {
    const std::uint32_t v = (std::uint32_t(p[0]) << 16) | (n > 1 ? std::uint32_t(p[1]) << 8 : 0) |
                            (n > 2 ? std::uint32_t(p[2]) : 0);
    out.push_back(kB64[(v >> 18) & 63]);
    out.push_back(kB64[(v >> 12) & 63]);
    out.push_back(n > 1 ? kB64[(v >> 6) & 63] : '=');
    out.push_back(n > 2 ? kB64[v & 63] : '=');
  };

  static constexpr std::string_view kBegin = "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\n";
  static constexpr std::string_view kEnd = "-----END PGP PUBLIC KEY BLOCK-----\n";
  const std::size_t b64_len = (packets.size() + 2) / 3 * 4;
  std::string out;
  out.reserve(kBegin.size() + b64_len + b64_len / 64 + 8 + kEnd.size());
  out += kBegin;
  const auto* p = reinterpret_cast<const unsigned char*>(packets.data());
  std::size_t line = 0;
  for (std::size_t i = 0; i < packets.size(); i += 3) {
    encode3(out, p + i, std::min<std::size_t>(3, packets.size() - i));
    line += 4;
    if (line == 64) {
      out.push_back('\n');
      line = 0;
    }
  }
  if (line != 0) out.push_back('\n');
  const unsigned char c[3] = {static_cast<unsigned char>(crc >> 16),
                              static_cast<unsigned char>(crc >> 8), static_cast<unsigned char>(crc)};
  out.push_back('=');
  encode3(out, c, 3);
  out.push_back('\n');
  out += kEnd;
  return out;
}

}  // namespace hkpgw::hkp
