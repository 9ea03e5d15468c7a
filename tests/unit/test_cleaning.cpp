// Key validation, cleaning, limits and merging with RNP, on real keys made by gpg and on keys
// made wrong on purpose from them (tests/support/forge.*).
#include <catch2/catch.hpp>

#include <chrono>
#include <ctime>

#include "hkp/keyring.hpp"
#include "hkp/packets.hpp"
#include "key_fixtures.hpp"
#include "support/forge.hpp"
#include "support/harness.hpp"

using namespace hkpgw;
using namespace hkpgw::hkp;
using namespace hkpgw::test;

namespace {

bool has_email(const KeyInfo& k, const std::string& email) {
  for (const auto& u : k.uids) {
    if (u.email == email) return true;
  }
  return false;
}

}  // namespace

TEST_CASE("a forged user ID (its self-signature does not verify) is dropped", "[keys][unit]") {
  const std::string forged = with_forged_uid(packets_of("alice.asc"), "Mallory <boss@alice.example>");
  const auto out = parse_keys(forged, {});
  const ParsedKey& k = only_key(out);
  CHECK(k.info.uids.size() == 2);
  CHECK_FALSE(has_email(k.info, "boss@alice.example"));
  CHECK_FALSE(k.info.matches({SearchKind::email, "boss@alice.example"}));
  CHECK(k.packets.find("boss@alice.example") == std::string::npos);  // gone from what is served
  // An altered copy of another user ID's self-signature: its hash prefix cannot match, so it goes
  // before any verification, and the user ID with it.
  CHECK(out.dropped.at("wrong_hash_prefix") == 1);
  CHECK(out.dropped.at("unbound_user_id") == 1);
}

TEST_CASE("removing forged user IDs takes no valid one along", "[keys][unit]") {
  // Found by fuzz_keys (its input is this seed): user IDs were removed by position front to
  // back, so once positions had moved a valid user ID went in place of a forged one, and the
  // forged one stayed without a signature. The one valid user ID must survive, alone.
  const std::string input =
      read_file(std::string(HKPGW_SOURCE_DIR) + "/tests/fuzz/corpus/keys/cleaning-must-settle");
  const auto out = parse_keys(input, {});
  const ParsedKey& k = only_key(out);
  REQUIRE(k.info.uids.size() == 1);
  CHECK(k.info.uids[0].text == "Alice Example <alice@example.org>");
  // Forged ones go whether verification or the structural pass (nothing claims to bind them)
  // saw them first.
  const auto count = [&](const char* reason) {
    return out.dropped.count(reason) ? out.dropped.at(reason) : 0;
  };
  CHECK(count("invalid_user_id") + count("unbound_user_id") >= 3);
  const auto again = parse_keys(k.packets, {});
  CHECK(only_key(again).info.uids.size() == 1);
  CHECK(again.dropped.empty());  // the cleaned copy is clean
}

TEST_CASE("a subkey bound by another key is dropped", "[keys][unit]") {
  // Bob's key with Alice's subkey and Alice's binding signature appended.
  const std::string mixed = with_foreign_subkey(packets_of("bob.asc"), packets_of("alice.asc"));
  const auto out = parse_keys(mixed, {});
  const ParsedKey& k = only_key(out);
  CHECK(k.info.fingerprint == fixture("BOB_FPR"));
  CHECK(k.info.subkeys.empty());
  CHECK_FALSE(k.info.matches({SearchKind::fingerprint, fixture("ALICE_SUB_FPR")}));
  // Its binding is not by Bob's key, so it is misplaced and the subkey is bound by nothing.
  CHECK(out.dropped.at("misplaced_signature") == 1);
  CHECK(out.dropped.at("unbound_subkey") == 1);
  CHECK(parse_keys(k.packets, {}).dropped.empty());  // the cleaned copy is clean
}

TEST_CASE("a key flooded with 2500 third-party certifications", "[keys][unit]") {
  const std::string flood = flooded(packets_of("alice.asc"), 2500);
  REQUIRE(signature_count(flood) >= 2503);
  config::KeysConfig limits;  // the defaults: strip_if_oversize, max_third_party_sigs 1000

  SECTION("is stripped to its self-signatures under the default policy") {
    const auto out = parse_keys(flood, limits);
    const ParsedKey& k = only_key(out);
    CHECK(signature_count(k.packets) == 3);  // two user ID self-signatures, one binding
    CHECK(out.dropped.at("third_party_signature") == 2500);
    CHECK(k.info.uids.size() == 2);
    CHECK(k.packets.size() < 2000);
  }
  SECTION("is kept whole with third_party_sigs = keep (within max_key_bytes)") {
    limits.third_party_sigs = config::ThirdPartySigs::keep;
    const auto out = parse_keys(flood, limits);
    CHECK(signature_count(only_key(out).packets) == 2503);
  }
  SECTION("keep, but over max_key_bytes: refused with the reason") {
    limits.third_party_sigs = config::ThirdPartySigs::keep;
    limits.max_key_bytes = 64 << 10;
    const auto out = parse_keys(flood, limits);
    CHECK(out.keys.empty());
    REQUIRE(out.rejected.size() == 1);
    CHECK(out.rejected[0].code == GPG_ERR_TOO_LARGE);
    CHECK(out.rejected[0].reason.find("max_key_bytes") != std::string::npos);
  }
  SECTION("strip always strips, however few") {
    limits.third_party_sigs = config::ThirdPartySigs::strip;
    const auto out = parse_keys(flooded(packets_of("alice.asc"), 3), limits);
    CHECK(signature_count(only_key(out).packets) == 3);
    CHECK(out.dropped.at("third_party_signature") == 3);
  }
}

TEST_CASE("packets over max_packet_bytes and max_sig_packet_bytes are dropped", "[keys][unit]") {
  config::KeysConfig limits;
  limits.max_packet_bytes = 4096;
  const auto out = parse_keys(with_oversize_uid(packets_of("alice.asc"), 6000), limits);
  const ParsedKey& k = only_key(out);
  CHECK(k.info.uids.size() == 2);
  CHECK(k.packets.find("big@example.org") == std::string::npos);
  // The oversize user ID's copied signature does not verify either, so RNP may drop it first;
  // one of the two reasons says why it went.
  CHECK(out.dropped.count("oversize_user_id") + out.dropped.count("invalid_user_id") == 1);

  limits.max_packet_bytes = 8 << 10;
  limits.max_sig_packet_bytes = 512;
  limits.third_party_sigs = config::ThirdPartySigs::keep;
  // RSA self-signatures are ~300 bytes, the flood's ~90: set the bar between real and huge.
  const auto small = parse_keys(packets_of("bob.asc"), limits);
  CHECK(only_key(small).info.uids.size() == 1);
  limits.max_sig_packet_bytes = 100;  // now bob's self-signatures are "oversize"
  const auto none = parse_keys(packets_of("bob.asc"), limits);
  CHECK(none.dropped.at("oversize_signature") >= 1);
  for (const auto& key : none.keys) CHECK(key.info.uids.empty());  // no valid self-cert left
}

TEST_CASE("a key without user IDs is kept, one without any valid self-signature is not",
          "[keys][unit]") {
  const auto nouids = parse_keys(read_file(data_dir() + "/alice-nouids.asc"), {});
  CHECK(only_key(nouids).info.uids.empty());
  CHECK(only_key(nouids).info.subkeys.size() == 1);

  const auto broken = parse_keys(without_valid_self_signature(packets_of("alice.asc")), {});
  CHECK(broken.keys.empty());
  REQUIRE(broken.rejected.size() == 1);
  CHECK(broken.rejected[0].fingerprint == fixture("ALICE_FPR"));
  CHECK(broken.rejected[0].code == GPG_ERR_BAD_SIGNATURE);
  CHECK(broken.rejected[0].reason == "the primary key has no valid self-signature");
}

TEST_CASE("merging copies of a key: nothing is lost, whichever copy is older", "[keys][unit]") {
  config::KeysConfig limits;
  const std::string alice = fixture("ALICE_FPR");
  const std::string v1 = cached_copy("alice.asc"), v2 = cached_copy("alice-v2.asc");

  SECTION("v1 cached, v2 arrives: the new subkey and user ID are added") {
    auto m = merge_key(v1, packets_of("alice-v2.asc"), alice, limits);
    REQUIRE(m);
    CHECK(m->changed);
    CHECK(m->key.info.uids.size() == 3);
    CHECK(m->key.info.subkeys.size() == 2);
    CHECK(has_email(m->key.info, "alice@newer.example"));
  }
  SECTION("v2 cached, v1 arrives: nothing to add, nothing lost, unchanged") {
    auto m = merge_key(v2, packets_of("alice.asc"), alice, limits);
    REQUIRE(m);
    CHECK_FALSE(m->changed);
    CHECK(m->key.packets == v2);
    CHECK(m->key.info.uids.size() == 3);
  }
  SECTION("an identical copy is unchanged") {
    auto m = merge_key(v1, packets_of("alice.asc"), alice, limits);
    REQUIRE(m);
    CHECK_FALSE(m->changed);
  }
  SECTION("a revocation arriving later is added, and an older unrevoked copy never removes it") {
    const std::string carol = fixture("CAROL_FPR");
    const std::string before = cached_copy("carol-unrevoked.asc");
    const std::string after = cached_copy("carol.asc");
    REQUIRE_FALSE(only_key(parse_keys(before, limits)).info.revoked);
    auto m = merge_key(before, packets_of("carol.asc"), carol, limits);
    REQUIRE(m);
    CHECK(m->changed);
    CHECK(m->key.info.revoked);
    auto back = merge_key(after, packets_of("carol-unrevoked.asc"), carol, limits);
    REQUIRE(back);
    CHECK(back->key.info.revoked);
    CHECK_FALSE(back->changed);
  }
  SECTION("an extended expiry is taken, and the older expiry never wins back") {
    const std::string dave = fixture("DAVE_FPR");
    const std::int64_t now = std::time(nullptr);
    const std::string expired = cached_copy("dave.asc");
    REQUIRE(only_key(parse_keys(expired, limits)).info.expired_at(now));
    auto m = merge_key(expired, packets_of("dave-extended.asc"), dave, limits);
    REQUIRE(m);
    CHECK(m->changed);
    CHECK_FALSE(m->key.info.expired_at(now));
    auto back = merge_key(cached_copy("dave-extended.asc"), packets_of("dave.asc"), dave, limits);
    REQUIRE(back);
    // The old copy's superseded self-signature joins the union (gpg had dropped it when it
    // extended the expiry), but the newest self-signature decides: still not expired.
    CHECK_FALSE(back->key.info.expired_at(now));
  }
}

TEST_CASE("a bare revocation certificate is recognised and applied to its key", "[keys][unit]") {
  const std::string rev = read_file(data_dir() + "/carol-revocation.asc");
  const auto revs = bare_revocations(rev);
  REQUIRE(revs);
  CHECK(revs->signatures == 1);
  REQUIRE(revs->issuers.size() == 1);
  CHECK(revs->issuers.front() == fixture("CAROL_FPR").substr(24));
  const std::string sig = dearmor(rev).value().binary;
  const auto twice = bare_revocations(sig + sig);
  REQUIRE(twice);
  CHECK(twice->signatures == 2);
  CHECK(twice->issuers.size() == 1);  // one issuer: its key is verified once
  CHECK_FALSE(bare_revocations(read_file(data_dir() + "/alice.asc")));  // a key, not sigs
  CHECK_FALSE(bare_revocations("garbage"));

  const std::string carol = fixture("CAROL_FPR");
  const std::string before = cached_copy("carol-unrevoked.asc");
  auto applied = apply_signatures(before, rev, carol, {});
  REQUIRE(applied);
  CHECK(applied->changed);
  CHECK(applied->key.info.revoked);
  // The same revocation again changes nothing.
  auto again = apply_signatures(applied->key.packets, rev, carol, {});
  REQUIRE(again);
  CHECK_FALSE(again->changed);
  // Someone else's revocation does not verify against alice: nothing is added.
  auto wrong = apply_signatures(cached_copy("alice.asc"), rev, fixture("ALICE_FPR"), {});
  REQUIRE(wrong);
  CHECK_FALSE(wrong->changed);
  CHECK_FALSE(wrong->key.info.revoked);
}

TEST_CASE("a keyring export is cut into chunks of whole keys", "[keys][unit]") {
  // Two armor blocks one after the other, as `cat a.asc b.asc` makes them.
  const std::string two = read_file(data_dir() + "/alice.asc") + read_file(data_dir() + "/bob.asc");
  const auto one_chunk = keyring_chunks(two, 1000);
  REQUIRE(one_chunk.size() == 1);
  CHECK(parse_keys(one_chunk[0], {}).keys.size() == 2);
  const auto per_key = keyring_chunks(two, 1);
  REQUIRE(per_key.size() == 2);
  CHECK(only_key(parse_keys(per_key[0], {})).info.fingerprint == fixture("ALICE_FPR"));
  CHECK(only_key(parse_keys(per_key[1], {})).info.fingerprint == fixture("BOB_FPR"));
  // One armor block holding seven keys, cut in threes.
  const auto sevens = keyring_chunks(read_file(data_dir() + "/upstream-keys.asc"), 3);
  std::size_t keys = 0;
  for (const auto& c : sevens) keys += parse_keys(c, {}).keys.size();
  CHECK(sevens.size() == 3);
  CHECK(keys == 7);
  // Not OpenPGP: handed back as it is.
  const auto junk = keyring_chunks("not a key", 10);
  REQUIRE(junk.size() == 1);
  CHECK(junk[0] == "not a key");
}

TEST_CASE("forged user IDs in front of the real ones go, and only they", "[keys][unit]") {
  // Two user IDs with altered (non-verifying) self-signatures right after the primary key: every
  // position after them moves when one is removed, the case removing front to back got wrong.
  const std::string key = packets_of("alice.asc");
  const std::string forged = hkp::make_packet(13, "Mallory <m1@alice.example>") +
                             altered_signature(first_uid_self_signature(key), 1) +
                             hkp::make_packet(13, "Mallory <m2@alice.example>") +
                             altered_signature(first_uid_self_signature(key), 2);
  const auto out = parse_keys(with_after_primary(key, forged), {});
  const ParsedKey& k = only_key(out);
  const auto real = only_key(parse_keys(key, {})).info.uids;
  REQUIRE(k.info.uids.size() == real.size());
  for (std::size_t i = 0; i < real.size(); ++i) CHECK(k.info.uids[i].text == real[i].text);
  CHECK(out.dropped.at("wrong_hash_prefix") == 2);  // copies of another user ID's signature
  CHECK(out.dropped.at("unbound_user_id") == 2);
  CHECK(k.packets.find("alice.example") == std::string::npos);
  CHECK(parse_keys(k.packets, {}).dropped.empty());
}
