// Cleaning keys RNP cannot read (v6, and v4 with Ed25519 primary keys) by the same rules as the
// keys it can: keys made here with OpenSSL (support/modern_forge) and every forged shape a
// keyserver may carry appended to them. Whatever is forged stays out of the served key, byte for
// byte; what the owner signed stays, revocations first.
#include <catch2/catch.hpp>
#include <ctime>

#include "hkp/armor.hpp"
#include "hkp/keyring.hpp"
#include "hkp/modern.hpp"
#include "hkp/packets.hpp"
#include "support/modern_forge.hpp"

using namespace hkpgw::hkp;
namespace forge = hkpgw::test::modern_forge;

namespace {

const hkpgw::config::KeysConfig kLimits;

ParsedKey only_key(const std::string& binary, const hkpgw::config::KeysConfig& limits = kLimits) {
  const auto parsed = parse_keys(binary, limits);
  INFO((parsed.rejected.empty() ? std::string() : parsed.rejected.front().reason));
  REQUIRE(parsed.rejected.empty());
  REQUIRE(parsed.keys.size() == 1);
  return parsed.keys.front();
}

struct Made {
  forge::Key primary, sub;
  std::string cert;
};

Made made(int version) {
  Made m{forge::make_key(version), forge::make_key(version, modern::kX25519), {}};
  m.cert = forge::certificate(m.primary, "Modern <modern@example.org>", m.sub);
  return m;
}

}  // namespace

TEST_CASE("keys made with OpenSSL clean to themselves, v4 and v6", "[modern][unit]") {
  for (int version : {4, 6}) {
    INFO("v" << version);
    const Made m = made(version);
    const ParsedKey k = only_key(m.cert);
    CHECK(k.packets == m.cert);
    CHECK(k.info.version == version);
    CHECK(k.info.fingerprint == m.primary.fingerprint_hex());
    REQUIRE(k.info.uids.size() == 1);
    CHECK(k.info.uids[0].email == "modern@example.org");
    REQUIRE(k.info.subkeys.size() == 1);
    CHECK(k.info.subkeys[0].fingerprint == m.sub.fingerprint_hex());
  }
}

TEST_CASE("forged parts appended to a modern key stay out of it, byte for byte",
          "[modern][unit][forgery]") {
  for (int version : {4, 6}) {
    INFO("v" << version);
    const Made m = made(version);
    const Made other = made(version);
    const std::string uid = "Victim <victim@example.org>";
    const forge::Key stranger = forge::make_key(version);
    const forge::Key signer_sub = forge::make_key(version);
    forge::SigOptions claiming_primary;
    claiming_primary.claimed_issuer = &m.primary;

    // The key's own binding of a second subkey, one byte changed before the Ed25519 signature:
    // in its salt (v6), in its hashed subpackets (v4).
    std::string tampered = forge::bind(m.primary, stranger);
    tampered[tampered.size() - 64 - 5] ^= 0x01;

    const std::pair<const char*, std::string> shapes[] = {
        {"another key's user ID, with its own certification",
         forge::user_id_packet(uid) + forge::certify(other.primary, uid)},
        {"a user ID certified by a stranger claiming the key",
         forge::user_id_packet(uid) + forge::certify(m.primary, uid, &stranger, claiming_primary)},
        {"a subkey bound by the wrong key",
         stranger.packet(true) + forge::bind(m.primary, stranger, false, true, &other.primary)},
        {"a binding with a tampered salt", stranger.packet(true) + tampered},
        {"a signing subkey without its back-signature",
         signer_sub.packet(true) + forge::bind(m.primary, signer_sub, true, false)},
        {"another key's subkey with its binding",
         other.sub.packet(true) + forge::bind(other.primary, other.sub)},
        {"a certification after the subkeys", forge::certify(m.primary, uid)},
    };
    for (const auto& [what, forged] : shapes) {
      INFO(what);
      const ParsedKey k = only_key(m.cert + forged);
      CHECK(k.packets == m.cert);
      CHECK(k.info.uids.size() == 1);
      CHECK(k.info.subkeys.size() == 1);
    }
    // A forged revocation claiming the key, in the primary key's slot: the key is not revoked.
    std::string forged_revocation =
        m.primary.packet() + forge::revoke_key(m.primary, &stranger, claiming_primary);
    const ParsedKey k = only_key(m.cert + forged_revocation);
    CHECK(k.packets == m.cert);
    CHECK_FALSE(k.info.revoked);
  }
}

TEST_CASE("a signing subkey with its back-signature and an ML-KEM subkey are bound and served",
          "[modern][unit]") {
  const Made m = made(6);
  const forge::Key signing = forge::make_key(6);
  const forge::Key mlkem = forge::make_key(6, modern::kMlKem768X25519);
  const std::string key = m.cert + signing.packet(true) + forge::bind(m.primary, signing, true) +
                          mlkem.packet(true) + forge::bind(m.primary, mlkem);
  const ParsedKey k = only_key(key);
  CHECK(k.packets == key);
  REQUIRE(k.info.subkeys.size() == 3);
  CHECK(k.info.subkeys[1].algo == modern::kEd25519);
  CHECK(k.info.subkeys[2].algo == modern::kMlKem768X25519);
  CHECK(k.info.subkeys[2].bits == 768);
  CHECK(k.info.subkeys[2].fingerprint == mlkem.fingerprint_hex());
}

TEST_CASE("a post-quantum primary key is refused with one line naming its algorithm",
          "[modern][unit]") {
  const forge::Key mldsa = forge::make_key(6, modern::kMlDsa65Ed25519);
  const auto parsed =
      parse_keys(mldsa.packet() + forge::user_id_packet("PQ <pq@example.org>"), kLimits);
  REQUIRE(parsed.keys.empty());
  REQUIRE(parsed.rejected.size() == 1);
  CHECK(parsed.rejected[0].fingerprint == mldsa.fingerprint_hex());
  CHECK_THAT(parsed.rejected[0].reason,
             Catch::Contains("ML-DSA-65+Ed25519") && Catch::Contains("algorithm 30"));
}

TEST_CASE("a modern key's revocations are applied and never lost in a merge", "[modern][unit]") {
  for (int version : {4, 6}) {
    INFO("v" << version);
    const Made m = made(version);
    const std::string revocation = forge::revoke_key(m.primary);
    const std::string revoked_copy =
        m.primary.packet() + revocation + m.cert.substr(m.primary.packet().size());
    // A copy with the revocation merged into the cached copy: revoked.
    const auto merged = merge_key(m.cert, revoked_copy, m.primary.fingerprint_hex(), kLimits);
    REQUIRE(merged);
    CHECK(merged->changed);
    CHECK(merged->key.info.revoked);
    // The old copy arriving later takes nothing away.
    const auto again = merge_key(merged->key.packets, m.cert, m.primary.fingerprint_hex(), kLimits);
    REQUIRE(again);
    CHECK_FALSE(again->changed);
    CHECK(again->key.info.revoked);
    // A bare revocation certificate (as /pks/add receives one) applies too.
    const auto applied = apply_signatures(m.cert, revocation, m.primary.fingerprint_hex(), kLimits);
    REQUIRE(applied);
    CHECK(applied->key.info.revoked);
    // A subkey revocation and a revoked user ID.
    const std::string uid = "Modern <modern@example.org>";
    const std::string more =
        m.cert + forge::user_id_packet(uid) +
        forge::sign(m.primary, 0x30, modern::signed_data(m.primary.body, 13, uid)) +
        m.sub.packet(true) + forge::revoke_subkey(m.primary, m.sub);
    const ParsedKey k = only_key(more);
    REQUIRE(k.info.uids.size() == 1);
    CHECK(k.info.uids[0].revoked);
    REQUIRE(k.info.subkeys.size() == 1);
    CHECK(k.info.subkeys[0].revoked);
  }
}

TEST_CASE(
    "a flood of forged signatures with right hash prefixes costs a bounded verification, and "
    "the owner's revocation among them stays",
    "[modern][unit][forgery]") {
  // The digest a signature's prefix comes from is public: a forger makes signatures whose hash
  // prefix is right and whose EdDSA part is not (here: made by a stranger's key, in the key's
  // name). Only verification can refuse them, so the budgets must bound how many are verified.
  const Made m = made(6);
  const forge::Key stranger = forge::make_key(6);
  forge::SigOptions in_its_name;
  in_its_name.claimed_issuer = &m.primary;
  const std::string uid = "Modern <modern@example.org>";
  std::string certifications, revocations;
  for (int i = 0; i < 1000; ++i) {
    certifications += forge::certify(m.primary, uid, &stranger, in_its_name);
  }
  // Eight forged revocations dated after the owner's genuine one (fewer than a component's
  // revocation budget, so which ones get verified is not left to chance here).
  for (int i = 0; i < 8; ++i) {
    forge::SigOptions later = in_its_name;
    later.created = static_cast<std::uint32_t>(std::time(nullptr)) - 60 + i;
    revocations += forge::revoke_key(m.primary, &stranger, later);
  }
  const std::string genuine = forge::revoke_key(m.primary);
  const std::string flooded = m.primary.packet() + revocations + genuine +
                              forge::direct_key(m.primary) + forge::user_id_packet(uid) +
                              certifications + m.cert.substr(m.primary.packet().size());
  const auto parsed = parse_keys(flooded, kLimits);
  REQUIRE(parsed.keys.size() == 1);
  const ParsedKey& k = parsed.keys.front();
  CHECK(k.info.revoked);
  CHECK(k.packets.find(genuine) != std::string::npos);
  // Nothing forged is served, and the flood was cut before verification: at most a
  // component's budget of new self-signatures (16) was verified on the user ID.
  CHECK(k.packets.size() < m.cert.size() + 2 * genuine.size() + 1024);
  CHECK(parsed.dropped.at("excess_signature") >= 1000 - 16);
  CHECK(parsed.dropped.at("invalid_signature") <= 16 + 8);
}
