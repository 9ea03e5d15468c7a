// RNP-backed key handling against real keys made by gpg (tests/fixtures/make-fixtures.sh).
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>

#include "hkp/armor.hpp"
#include "hkp/keyring.hpp"
#include "hkp/usage.hpp"
#include "support/harness.hpp"

using namespace hkpgw;
using namespace hkpgw::hkp;
using hkpgw::test::data_dir;
using hkpgw::test::fixture;
using hkpgw::test::read_file;

namespace {

ParseOutcome parse_file(const std::string& name, config::KeysConfig limits = {}) {
  return parse_keys(read_file(data_dir() + "/" + name), limits);
}

const ParsedKey& only_key(const ParseOutcome& o) {
  REQUIRE(o.keys.size() == 1);
  return o.keys[0];
}

}  // namespace

TEST_CASE("a key with a subkey and two user IDs", "[hkp][unit]") {
  const auto out = parse_file("alice.asc");
  const KeyInfo& k = only_key(out).info;
  CHECK(k.fingerprint == fixture("ALICE_FPR"));
  CHECK(k.keyid() == fixture("ALICE_FPR").substr(24));
  CHECK(k.algo == 22);  // EdDSA
  CHECK(k.version == 4);
  CHECK(k.created > 1700000000);
  CHECK(k.expires > k.created);
  CHECK_FALSE(k.revoked);
  REQUIRE(k.uids.size() == 2);  // gpg exports the primary user ID first: match by address
  auto uid = [&](const std::string& email) {
    auto it = std::find_if(k.uids.begin(), k.uids.end(),
                           [&](const UserId& u) { return u.email == email; });
    REQUIRE(it != k.uids.end());
    return *it;
  };
  CHECK(uid("alice@example.org").text == "Alice Example <alice@example.org>");
  CHECK(uid("alice@work.example").text == "Alice Work: Ops <Alice@Work.Example>");
  CHECK(uid("alice@example.org").created >= k.created);
  REQUIRE(k.subkeys.size() == 1);
  CHECK(k.subkeys[0].fingerprint == fixture("ALICE_SUB_FPR"));
  CHECK(k.subkeys[0].algo == 18);  // ECDH
}

TEST_CASE("a key answers to every identifier it carries and no other", "[hkp][unit]") {
  const KeyInfo k = only_key(parse_file("alice.asc")).info;
  const std::string fpr = fixture("ALICE_FPR"), sub = fixture("ALICE_SUB_FPR");
  CHECK(k.matches({SearchKind::fingerprint, fpr}));
  CHECK(k.matches({SearchKind::long_keyid, fpr.substr(24)}));
  CHECK(k.matches({SearchKind::short_keyid, fpr.substr(32)}));
  CHECK(k.matches({SearchKind::fingerprint, sub}));
  CHECK(k.matches({SearchKind::long_keyid, sub.substr(24)}));
  CHECK(k.matches({SearchKind::email, "alice@work.example"}));
  CHECK(k.matches({SearchKind::text, "alice work"}));
  CHECK_FALSE(k.matches({SearchKind::fingerprint, fixture("BOB_FPR")}));
  CHECK_FALSE(k.matches({SearchKind::email, "bob+keys@example.org"}));
}

TEST_CASE("RSA keys report algorithm 1 and their size", "[hkp][unit]") {
  const KeyInfo k = only_key(parse_file("bob.asc")).info;
  CHECK(k.algo == 1);
  CHECK(k.bits == 2048);
  CHECK(k.uids.at(0).email == "bob+keys@example.org");
}

TEST_CASE("revocation, expiry and revoked user IDs are seen", "[hkp][unit]") {
  CHECK(only_key(parse_file("carol.asc")).info.revoked);
  const KeyInfo dave = only_key(parse_file("dave.asc")).info;
  CHECK(dave.expires != 0);
  CHECK(dave.expired_at(std::time(nullptr)));
  const KeyInfo erin = only_key(parse_file("erin.asc")).info;
  REQUIRE(erin.uids.size() == 2);
  const auto old = std::find_if(erin.uids.begin(), erin.uids.end(),
                                [](const UserId& u) { return u.email == "erin@old.example"; });
  REQUIRE(old != erin.uids.end());
  CHECK(old->revoked);
}

TEST_CASE("several keys in one body, armored or binary", "[hkp][unit]") {
  const auto armored = parse_file("upstream-keys.asc");
  CHECK(armored.keys.size() == 7);
  CHECK(armored.rejected.empty());
  std::string binary;
  for (const auto& k : armored.keys) binary += k.packets;
  const auto again = parse_keys(binary, {});
  CHECK(again.keys.size() == 7);
}

TEST_CASE("our armor is read back by RNP unchanged", "[hkp][unit]") {
  const auto parsed = parse_file("alice.asc");
  const ParsedKey& k = only_key(parsed);
  const std::string armored = armor_public_keys(k.packets);
  CHECK(armored.starts_with("-----BEGIN PGP PUBLIC KEY BLOCK-----\n\n"));
  CHECK(armored.ends_with("-----END PGP PUBLIC KEY BLOCK-----\n"));
  const auto back = parse_keys(armored, {});
  REQUIRE(back.keys.size() == 1);
  CHECK(back.keys[0].packets == k.packets);
}

TEST_CASE("secret key material is detected", "[hkp][unit]") {
  const auto out = parse_file("alice-secret.asc");
  CHECK(out.secret_material);
  CHECK(out.keys.empty());
}

TEST_CASE("garbage is not OpenPGP", "[hkp][unit]") {
  auto garbage = GENERATE(std::string("hello world"), std::string(),
                          std::string("-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nAAAA\n-----END PGP PUBLIC KEY BLOCK-----\n"));
  const auto out = parse_keys(garbage, {});
  CHECK(out.keys.empty());
  CHECK_FALSE(out.secret_material);
  CHECK(out.not_openpgp);
}

TEST_CASE("OpenPGP packets that hold no key are OpenPGP all the same", "[hkp][unit]") {
  // A revocation certificate (one signature packet) and a key are both OpenPGP.
  CHECK_FALSE(parse_file("carol-revocation.asc").not_openpgp);
  CHECK_FALSE(parse_file("alice.asc").not_openpgp);
  CHECK(parse_file("carol-revocation.asc").keys.empty());
}

TEST_CASE("a key over max_key_bytes is rejected with the reason", "[hkp][unit]") {
  config::KeysConfig limits;
  limits.max_key_bytes = 200;
  limits.third_party_sigs = config::ThirdPartySigs::keep;
  const auto out = parse_file("bob.asc", limits);
  CHECK(out.keys.empty());
  REQUIRE(out.rejected.size() == 1);
  CHECK(out.rejected[0].code == GPG_ERR_TOO_LARGE);
  CHECK(out.rejected[0].fingerprint == fixture("BOB_FPR"));
}

TEST_CASE("parsing keys never closes descriptors it does not own", "[hkp][unit]") {
  // Regression: RNP closes the log descriptor it is given; a shared one made it close sockets.
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  struct stat before{};
  REQUIRE(::fstat(fds[0], &before) == 0);
  for (int i = 0; i < 5; ++i) {
    CHECK(parse_file("alice.asc").keys.size() == 1);
  }
  struct stat after{};
  REQUIRE(::fstat(fds[0], &after) == 0);
  CHECK(after.st_ino == before.st_ino);
  CHECK(::write(fds[1], "x", 1) == 1);
  ::close(fds[0]);
  ::close(fds[1]);
}

TEST_CASE("key flags: what the primary key and each subkey are for", "[keys][unit]") {
  // alice: an Ed25519 primary key (gpg: sign and certify) and a Curve25519 subkey (encrypt).
  const auto alice = hkpgw::hkp::dearmor(read_file(data_dir() + "/alice.asc"));
  REQUIRE(alice.has_value());
  const auto flags = hkpgw::hkp::key_flags(alice->binary);
  REQUIRE(flags.size() == 2);
  CHECK(hkpgw::hkp::usage_words(flags.at(fixture("ALICE_FPR"))) == "certify, sign");
  CHECK(hkpgw::hkp::usage_words(flags.at(fixture("ALICE_SUB_FPR"))) == "encrypt");
  // frank: a signing subkey beside the encryption one.
  const auto frank = hkpgw::hkp::dearmor(read_file(data_dir() + "/frank.asc"));
  REQUIRE(frank.has_value());
  std::vector<std::string> words;
  for (const auto& [fpr, f] : hkpgw::hkp::key_flags(frank->binary))
    words.push_back(hkpgw::hkp::usage_words(f));
  std::sort(words.begin(), words.end());
  CHECK(words == std::vector<std::string>{"certify", "encrypt", "sign"});
  // Not OpenPGP, or a signature with no key before it: nothing, and no crash.
  CHECK(hkpgw::hkp::key_flags("not packets").empty());
  CHECK(hkpgw::hkp::usage_words(0).empty());
  CHECK(hkpgw::hkp::usage_words(0x2f) == "certify, sign, encrypt, authenticate");
}
