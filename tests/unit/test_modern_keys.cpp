// RFC 9580 version 6 keys and signatures, verified with OpenSSL (hkp/modern.hpp), against the
// sample certificate of RFC 9580 Appendix A.3 (Ed25519 primary key, X25519 subkey) and forged
// variants of it: the verifier must say yes to the real signatures and no to every tampering.
#include <catch2/catch.hpp>

#include "hkp/armor.hpp"
#include "hkp/keyring.hpp"
#include "hkp/modern.hpp"
#include "hkp/packets.hpp"
#include "support/actors.hpp"
#include "support/harness.hpp"

using namespace hkpgw::hkp;

namespace {

// RFC 9580, Appendix A.3: "Sample Version 6 Certificate (Transferable Public Key)".
constexpr std::string_view kSampleV6 = R"(-----BEGIN PGP PUBLIC KEY BLOCK-----

xioGY4d/4xsAAAAg+U2nu0jWCmHlZ3BqZYfQMxmZu52JGggkLq2EVD34laPCsQYf
GwoAAABCBYJjh3/jAwsJBwUVCg4IDAIWAAKbAwIeCSIhBssYbE8GCaaX5NUt+mxy
KwwfHifBilZwj2Ul7Ce62azJBScJAgcCAAAAAK0oIBA+LX0ifsDm185Ecds2v8lw
gyU2kCcUmKfvBXbAf6rhRYWzuQOwEn7E/aLwIwRaLsdry0+VcallHhSu4RN6HWaE
QsiPlR4zxP/TP7mhfVEe7XWPxtnMUMtf15OyA51YBM4qBmOHf+MZAAAAIIaTJINn
+eUBXbki+PSAld2nhJh/LVmFsS+60WyvXkQ1wpsGGBsKAAAALAWCY4d/4wKbDCIh
BssYbE8GCaaX5NUt+mxyKwwfHifBilZwj2Ul7Ce62azJAAAAAAQBIKbpGG2dWTX8
j+VjFM21J0hqWlEg+bdiojWnKfA5AQpWUWtnNwDEM0g12vYxoWM8Y81W+bHBw805
I8kWVkXU6vFOi+HWvv/ira7ofJu16NnoUkhclkUrk0mXubZvyl4GBg==
-----END PGP PUBLIC KEY BLOCK-----
)";

std::vector<Packet> sample_packets(std::string& binary) {
  auto d = dearmor(kSampleV6);
  REQUIRE(d.has_value());
  binary = d->binary;
  auto packets = split_packets(binary);
  REQUIRE(packets.has_value());
  return *packets;
}

}  // namespace

TEST_CASE("the RFC 9580 sample v6 certificate: fingerprint, key ID and both signatures verify",
          "[modern][unit]") {
  std::string binary;
  const auto p = sample_packets(binary);
  // Public key, direct-key signature, subkey, subkey binding.
  REQUIRE(p.size() == 4);
  CHECK(p[0].tag == tag::public_key);
  CHECK(key_packet_version(p[0].body) == 6);
  const auto primary = modern::parse_key(p[0].body);
  REQUIRE(primary);
  CHECK(primary->algorithm == modern::kEd25519);
  CHECK(modern::fingerprint_hex(*primary) ==
        "CB186C4F0609A697E4D52DFA6C722B0C1F1E27C18A56708F6525EC27BAD9ACC9");
  CHECK(modern::key_id_hex(*primary) == "CB186C4F0609A697");
  const auto subkey = modern::parse_key(p[2].body);
  REQUIRE(subkey);
  CHECK(subkey->algorithm == modern::kX25519);

  const auto direct = modern::parse_signature(p[1].body);
  REQUIRE(direct);
  CHECK(direct->version == 6);
  CHECK(direct->type == 0x1f);
  CHECK(direct->hash_algorithm == 10);  // SHA2-512
  CHECK(direct->salt.size() == 32);     // SHA2-512's salt size
  CHECK(modern::issuer_fingerprint_hex(*direct) == modern::fingerprint_hex(*primary));
  CHECK(modern::verify_over_key(*primary, *direct, *primary));

  const auto binding = modern::parse_signature(p[3].body);
  REQUIRE(binding);
  CHECK(binding->type == 0x18);
  CHECK(modern::verify_subkey_binding(*primary, *binding, *subkey));
  // A binding is not a direct-key signature, and the other way round.
  CHECK_FALSE(modern::verify_over_key(*primary, *binding, *primary));
  CHECK_FALSE(modern::verify_subkey_binding(*primary, *direct, *subkey));
}

TEST_CASE("a tampered v6 signature or key never verifies", "[modern][unit]") {
  std::string binary;
  const auto p = sample_packets(binary);
  const auto primary = modern::parse_key(p[0].body);
  const auto subkey = modern::parse_key(p[2].body);
  REQUIRE(primary);
  REQUIRE(subkey);
  // Flip one byte at every offset of the binding signature's body: each copy either fails to
  // parse or fails to verify (the unhashed area, which the signature does not cover, holds
  // nothing in the sample).
  const std::string sig(p[3].body);
  for (std::size_t i = 0; i < sig.size(); ++i) {
    std::string forged = sig;
    forged[i] = static_cast<char>(forged[i] ^ 0x01);
    const auto parsed = modern::parse_signature(forged);
    INFO("byte " << i);
    CHECK_FALSE((parsed && modern::verify_subkey_binding(*primary, *parsed, *subkey)));
  }
  // The subkey's material changed: the binding no longer covers it.
  std::string other_sub(p[2].body);
  other_sub.back() = static_cast<char>(other_sub.back() ^ 0x80);
  const auto moved = modern::parse_key(other_sub);
  REQUIRE(moved);
  const auto binding = modern::parse_signature(p[3].body);
  REQUIRE(binding);
  CHECK_FALSE(modern::verify_subkey_binding(*primary, *binding, *moved));
  // A signature is verified only with the key it names.
  CHECK_FALSE(modern::verify_subkey_binding(*moved, *binding, *subkey));
}

TEST_CASE("v6 parsing refuses what does not frame, and names v5", "[modern][unit]") {
  CHECK_FALSE(modern::parse_key(""));
  CHECK_FALSE(modern::parse_key(std::string("\x06\x63\x87\x7f\xe3\x1b\x00\x00\x00\x21", 10) +
                                std::string(32, 'k')));  // material shorter than its length
  CHECK(key_packet_version(std::string("\x05\x00", 2)) == 5);
  CHECK(key_packet_version(std::string("\x04\x00", 2)) == 4);
  CHECK(key_packet_version("") == 0);
  CHECK_FALSE(modern::parse_signature(std::string("\x06\x1f\x1b\x08\xff\xff\xff\xff", 8)));
}

namespace {

// Every self-signature of a key made by OpenPGP.js, verified where it stands: direct-key ones
// over the key, certifications over the key and the user ID before them, bindings over the key
// and the subkey before them. Counts what verified by kind; `tamper` changes each user ID first.
struct Verified {
  int direct = 0, certifications = 0, bindings = 0, failed = 0;
  std::string fingerprint;
  int primary_version = 0, primary_algorithm = 0, subkey_algorithm = 0;
};

Verified verify_all(const std::string& armored, bool tamper = false) {
  auto d = dearmor(armored);
  REQUIRE(d.has_value());
  const std::string binary = d->binary;
  auto packets = split_packets(binary);
  REQUIRE(packets.has_value());
  Verified v;
  std::optional<modern::Key> primary, subkey;
  std::string uid;
  int uid_tag = 0;
  enum { direct, user, sub } at = direct;
  for (const Packet& p : *packets) {
    if (p.tag == tag::public_key) {
      primary = modern::parse_key(p.body);
      REQUIRE(primary);
      v.fingerprint = modern::fingerprint_hex(*primary);
      v.primary_version = primary->version;
      v.primary_algorithm = primary->algorithm;
    } else if (p.tag == tag::user_id || p.tag == tag::user_attribute) {
      uid = std::string(p.body);
      if (tamper) uid += " (appended)";
      uid_tag = p.tag;
      at = user;
    } else if (p.tag == tag::public_subkey) {
      subkey = modern::parse_key(p.body);
      REQUIRE(subkey);
      v.subkey_algorithm = subkey->algorithm;
      at = sub;
    } else if (p.tag == tag::signature) {
      const auto sig = modern::parse_signature(p.body);
      REQUIRE(sig);
      CHECK(modern::issuer_fingerprint_hex(*sig) == v.fingerprint);  // OpenPGP.js's own count
      bool ok = false;
      if (at == direct) ok = modern::verify_over_key(*primary, *sig, *primary), v.direct += ok;
      if (at == user) {
        ok = modern::verify_certification(*primary, *sig, *primary, uid_tag, uid);
        v.certifications += ok;
      }
      if (at == sub) ok = modern::verify_subkey_binding(*primary, *sig, *subkey), v.bindings += ok;
      v.failed += !ok;
    }
  }
  return v;
}

std::string fixture_text(const std::string& name) {
  return hkpgw::test::read_file(std::string(HKPGW_SOURCE_DIR) + "/tests/fixtures/openpgpjs/" + name);
}

}  // namespace

TEST_CASE("keys OpenPGP.js 6 makes verify: v4 with Ed25519 and X25519, and v6",
          "[modern][unit]") {
  const Verified v4 = verify_all(fixture_text("curve25519-v4.asc"));
  CHECK(v4.primary_version == 4);
  CHECK(v4.primary_algorithm == modern::kEd25519);
  CHECK(v4.subkey_algorithm == modern::kX25519);
  CHECK(v4.fingerprint.size() == 40);
  CHECK(v4.certifications == 1);
  CHECK(v4.bindings == 1);
  CHECK(v4.failed == 0);

  const Verified v6 = verify_all(fixture_text("curve25519-v6.asc"));
  CHECK(v6.primary_version == 6);
  CHECK(v6.primary_algorithm == modern::kEd25519);
  CHECK(v6.fingerprint.size() == 64);
  CHECK(v6.direct == 1);  // a v6 key carries its preferences in a direct-key signature
  CHECK(v6.certifications == 1);
  CHECK(v6.bindings == 1);
  CHECK(v6.failed == 0);

  // The same signatures over a user ID someone appended to: none verifies.
  for (const char* name : {"curve25519-v4.asc", "curve25519-v6.asc"}) {
    INFO(name);
    const Verified forged = verify_all(fixture_text(name), true);
    CHECK(forged.certifications == 0);
    CHECK(forged.failed >= 1);
  }
}

TEST_CASE("parse_keys reads OpenPGP.js's keys and the RFC 9580 sample whole, with their facts",
          "[modern][unit]") {
  const hkpgw::config::KeysConfig limits;
  auto only_key = [&](const std::string& armored) {
    const auto parsed = parse_keys(armored, limits);
    INFO((parsed.rejected.empty() ? std::string() : parsed.rejected.front().reason));
    REQUIRE(parsed.rejected.empty());
    REQUIRE(parsed.keys.size() == 1);
    // Nothing was dropped: the served key is the key as its owner made it, byte for byte.
    CHECK(parsed.keys.front().packets == dearmor(armored)->binary);
    return parsed.keys.front();
  };
  // OpenPGP.js 6's default key: v4 with Ed25519 (27) and X25519 (25). RNP 0.16 cannot read it.
  const ParsedKey v4 = only_key(fixture_text("curve25519-v4.asc"));
  CHECK(v4.info.version == 4);
  CHECK(v4.info.fingerprint.size() == 40);
  CHECK(v4.info.algo == modern::kEd25519);
  CHECK(v4.info.bits == 255);
  REQUIRE(v4.info.uids.size() == 1);
  CHECK(v4.info.uids[0].email == "proton@example.org");
  CHECK_FALSE(v4.info.uids[0].revoked);
  REQUIRE(v4.info.subkeys.size() == 1);
  CHECK(v4.info.subkeys[0].algo == modern::kX25519);
  CHECK_FALSE(v4.info.revoked);
  // A v6 key: a 64-digit fingerprint, its key ID the first 16 digits.
  const ParsedKey v6 = only_key(fixture_text("curve25519-v6.asc"));
  CHECK(v6.info.version == 6);
  CHECK(v6.info.fingerprint.size() == 64);
  CHECK(v6.info.keyid() == v6.info.fingerprint.substr(0, 16));
  REQUIRE(v6.info.uids.size() == 1);
  REQUIRE(v6.info.subkeys.size() == 1);
  CHECK(v6.info.subkeys[0].fingerprint.size() == 64);
  // RFC 9580's sample: no user ID, a direct-key signature only.
  const ParsedKey sample = only_key(std::string(kSampleV6));
  CHECK(sample.info.fingerprint ==
        "CB186C4F0609A697E4D52DFA6C722B0C1F1E27C18A56708F6525EC27BAD9ACC9");
  CHECK(sample.info.uids.empty());
  REQUIRE(sample.info.subkeys.size() == 1);
  CHECK(sample.info.subkeys[0].fingerprint ==
        "12C83F1E706F6308FE151A417743A1F033790E93E9978488D1DB378DA9930885");
  // Secret key material is refused whatever the version: the sample with its primary key
  // packet tagged as a secret key.
  std::string binary;
  const auto p = sample_packets(binary);
  std::string secret = make_packet(tag::secret_key, p[0].body);
  for (std::size_t i = 1; i < p.size(); ++i) secret += p[i].whole;
  const auto refused = parse_keys(secret, limits);
  CHECK(refused.secret_material);
  CHECK(refused.keys.empty());
}

TEST_CASE("keys of versions OpenPGP does not have are refused with a line that says why",
          "[modern][unit]") {
  const hkpgw::config::KeysConfig limits;
  // A v5 (LibrePGP) key packet: refused as such.
  std::string v5_body("\x05\x63\x87\x7f\xe3\x1b\x00\x00\x00\x20", 10);
  v5_body += std::string(32, 'k');
  const auto parsed = parse_keys(armor_public_keys(make_packet(tag::public_key, v5_body)), limits);
  REQUIRE(parsed.keys.empty());
  REQUIRE(parsed.rejected.size() == 1);
  CHECK_THAT(parsed.rejected.front().reason, Catch::Contains("v5") && Catch::Contains("LibrePGP"));
}

TEST_CASE("keys OpenPGP.js makes now verify here, each self-signature where it stands",
          "[modern][unit][openpgpjs]") {
  // tests/js/make_keys.mjs: fresh keys on every run (node from Debian, OpenPGP.js from npm).
  const auto made = hkpgw::test::openpgpjs_make_keys();
  INFO(made.run.err);
  REQUIRE_FALSE(made.v6.empty());
  const std::string& v4_key = made.v4;
  const std::string& v6_key = made.v6;
  const Verified v4 = verify_all(v4_key);
  CHECK(v4.primary_version == 4);
  CHECK(v4.primary_algorithm == modern::kEd25519);
  CHECK(v4.certifications == 1);
  CHECK(v4.bindings == 1);
  CHECK(v4.failed == 0);
  const Verified v6 = verify_all(v6_key);
  CHECK(v6.primary_version == 6);
  CHECK(v6.direct == 1);
  CHECK(v6.certifications == 1);
  CHECK(v6.bindings == 1);
  CHECK(v6.failed == 0);
  // Fresh keys, not the committed fixtures.
  CHECK(v4.fingerprint != verify_all(fixture_text("curve25519-v4.asc")).fingerprint);
  CHECK(v6.fingerprint != verify_all(fixture_text("curve25519-v6.asc")).fingerprint);
}
