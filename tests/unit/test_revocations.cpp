// Revocations reach the cache whatever comes with them: a revoked or expired key keeps every
// subkey and user ID a valid signature binds (so every lookup form finds it), padding with bare
// packets never refuses a copy, a copy refused whole still revokes the cached key, and forged
// revocations dated after the genuine one cannot crowd it out before verification.
#include <catch2/catch.hpp>

#include <ctime>

#include "hkp/key_filter.hpp"
#include "hkp/keyring.hpp"
#include "hkp/packets.hpp"
#include "key_fixtures.hpp"
#include "support/forge.hpp"
#include "support/harness.hpp"

using namespace hkpgw;
using namespace hkpgw::hkp;
using namespace hkpgw::test;

namespace {

bool has_subkey(const KeyInfo& k, const std::string& fpr) {
  for (const auto& s : k.subkeys) {
    if (s.fingerprint == fpr) return true;
  }
  return false;
}

// `count` distinct forged signatures of `type` claiming `key`'s primary key, on its user ID `uid`
// ("" for the key itself), dated from `from` on, with right hash prefixes: only verification
// can tell them from genuine ones.
std::string forged(const std::string& key, const std::string& uid, int type, int count,
                   std::uint32_t from) {
  std::string out;
  for (int i = 0; i < count; ++i) out += forged_signature_on(key, uid, type, from + i);
  return out;
}

// The text of a key's first user ID.
std::string first_uid(const std::string& key) {
  const auto packets = hkpgw::hkp::split_packets(key);
  if (!packets) return {};
  for (const auto& p : *packets) {
    if (p.tag == hkpgw::hkp::tag::user_id) return std::string(p.body);
  }
  return {};
}

}  // namespace

TEST_CASE("a revoked key keeps its subkeys and user IDs, and answers to each of them",
          "[keys][unit]") {
  const auto out = parse_keys(read_file(data_dir() + "/frank.asc"), {});
  const ParsedKey& k = only_key(out);
  CHECK(k.info.revoked);
  CHECK(k.info.subkeys.size() == 2);
  CHECK(has_subkey(k.info, fixture("FRANK_SIGN_FPR")));
  CHECK(has_subkey(k.info, fixture("FRANK_ENC_FPR")));
  CHECK(k.info.uids.size() == 1);
  for (const char* name : {"FRANK_SIGN_FPR", "FRANK_ENC_FPR"}) {
    const std::string sub = fixture(name);
    CHECK(k.info.matches({SearchKind::fingerprint, sub}));
    CHECK(k.info.matches({SearchKind::long_keyid, sub.substr(24)}));
  }
  CHECK(k.info.matches({SearchKind::email, "frank@example.org"}));
  CHECK(out.dropped.count("invalid_subkey") == 0);
  // What is served reads back the same (nothing left for a second cleaning to take).
  const auto again = parse_keys(k.packets, {});
  CHECK(only_key(again).info.subkeys.size() == 2);
  CHECK(again.dropped.empty());
}

TEST_CASE("an expired key keeps its subkeys and user IDs", "[keys][unit]") {
  const auto out = parse_keys(read_file(data_dir() + "/gina.asc"), {});
  const ParsedKey& k = only_key(out);
  CHECK(k.info.expired_at(std::time(nullptr)));
  CHECK_FALSE(k.info.revoked);
  CHECK(k.info.subkeys.size() == 2);
  CHECK(has_subkey(k.info, fixture("GINA_SIGN_FPR")));
  CHECK(has_subkey(k.info, fixture("GINA_ENC_FPR")));
  CHECK(k.info.uids.size() == 1);
  CHECK(out.dropped.count("invalid_subkey") == 0);
}

TEST_CASE("a revoked key still loses a subkey nobody bound and a forged user ID",
          "[keys][unit]") {
  // The rule is the same for every key: a signature must verify, whatever the key's state.
  const std::string pub = packets_of("frank.asc");
  const auto out =
      parse_keys(with_forged_uid(with_foreign_subkey(pub, packets_of("alice.asc")), "Mallory <m@x>"),
                 {});
  const ParsedKey& k = only_key(out);
  CHECK(k.info.revoked);
  CHECK(k.info.subkeys.size() == 2);
  CHECK_FALSE(has_subkey(k.info, fixture("ALICE_SUB_FPR")));
  CHECK(k.info.uids.size() == 1);
  CHECK(out.dropped.at("unbound_subkey") == 1);  // its binding is by another key
  // Its self-signature is a copy of another user ID's: the hash prefix cannot match, so it goes
  // before any verification, and with it the user ID.
  CHECK(out.dropped.at("wrong_hash_prefix") == 1);
  CHECK(out.dropped.at("unbound_user_id") == 1);
}

TEST_CASE("bare user IDs or subkeys padding a revoked copy do not keep the revocation out",
          "[keys][unit]") {
  const std::string fpr = fixture("FRANK_FPR");
  const std::string cached = cached_copy("frank-unrevoked.asc");
  const std::string revoked = packets_of("frank.asc");
  config::KeysConfig limits;  // max_user_ids = max_subkeys = 100

  SECTION("100 bare user IDs") {
    const std::string padded = with_bare_uids(revoked, 100);
    const auto parsed = parse_keys(padded, limits);
    CHECK(only_key(parsed).info.revoked);
    CHECK(parsed.dropped.at("unbound_user_id") == 100);
    auto m = merge_key(cached, padded, fpr, limits);
    REQUIRE(m);
    CHECK(m->changed);
    CHECK(m->key.info.revoked);
    CHECK(m->key.info.uids.size() == 1);
    CHECK(m->key.info.subkeys.size() == 2);
  }
  SECTION("101 bare subkeys") {
    const std::string padded = with_bare_subkeys(revoked, 101);
    CHECK(only_key(parse_keys(padded, limits)).info.revoked);
    auto m = merge_key(cached, padded, fpr, limits);
    REQUIRE(m);
    CHECK(m->key.info.revoked);
    CHECK(m->key.info.subkeys.size() == 2);
  }
}

TEST_CASE("a copy refused whole for its size still brings its revocation to the cached key",
          "[keys][unit]") {
  // 101 user IDs each with a claimed (forged) self-signature: over max_user_ids, refused whole;
  // its genuine revocation applies all the same, and nothing else of it.
  const std::string fpr = fixture("FRANK_FPR");
  const std::string cached = cached_copy("frank-unrevoked.asc");
  const std::string padded = with_fake_uids(packets_of("frank.asc"), 101);
  config::KeysConfig limits;

  const auto parsed = parse_keys(padded, limits);
  CHECK(parsed.keys.empty());
  REQUIRE(parsed.rejected.size() == 1);
  CHECK(parsed.rejected[0].reason == "key has 102 user IDs, over max_user_ids (100)");
  REQUIRE(parsed.revocations.size() == 1);
  CHECK(parsed.revocations[0].fingerprint == fpr);

  auto m = merge_key(cached, padded, fpr, limits);
  REQUIRE(m);
  CHECK(m->changed);
  CHECK(m->key.info.revoked);
  CHECK(m->key.info.uids.size() == 1);
  CHECK(m->key.info.subkeys.size() == 2);
  for (const auto& u : m->key.info.uids) CHECK(u.text.find("Fake") == std::string::npos);

  // A copy refused whole with only forged revocations changes nothing.
  const std::string forged_only = with_fake_uids(
      with_after_primary(packets_of("frank-unrevoked.asc"),
                         forged(packets_of("frank-unrevoked.asc"), "", 0x20, 3,
                                static_cast<std::uint32_t>(std::time(nullptr)) + 3600)),
      101);
  auto none = merge_key(cached, forged_only, fpr, limits);
  CHECK_FALSE((none && none->changed));
}

TEST_CASE("forged revocations dated after the genuine one cannot crowd it out", "[keys][unit]") {
  const std::string fpr = fixture("CAROL_FPR");
  const std::string cached = cached_copy("carol-unrevoked.asc");
  const std::string revoked = packets_of("carol.asc");
  config::KeysConfig limits;

  SECTION("eight, through a merge (a refresh) and alone (a first fetch)") {
    const std::string crowded = with_after_primary(revoked, forged(revoked, "", 0x20, 8, 2000000000u));
    auto m = merge_key(cached, crowded, fpr, limits);
    REQUIRE(m);
    CHECK(m->changed);
    CHECK(m->key.info.revoked);
    CHECK(only_key(parse_keys(crowded, limits)).info.revoked);
  }
  SECTION("two hundred: a refresh that misses it is followed by one that finds it") {
    // Past the budget, which revocations are verified is chosen at random (never by date or
    // position, which the sender picks): 16 of 201 each time, so the genuine one is found
    // within a few refreshes, and once found it is kept for good (trusted in the cached copy).
    const std::string crowded = with_after_primary(revoked, forged(revoked, "", 0x20, 200, 2000000000u));
    int refreshes = 0;
    bool revoked_now = false;
    while (!revoked_now && refreshes < 300) {
      ++refreshes;
      auto m = merge_key(cached, crowded, fpr, limits);
      revoked_now = m && m->key.info.revoked;
    }
    INFO("refreshes: " << refreshes);
    CHECK(revoked_now);
  }
}

TEST_CASE("the verification budget is never an order the sender chose", "[keys][unit]") {
  // 40 forged self-certifications newer than the real one (an hour ahead: later ones are
  // dropped unread): under a newest-first budget the real one never reached verification and
  // the user ID was dropped as forged.
  const std::string pub = packets_of("alice.asc");
  const auto soon = static_cast<std::uint32_t>(std::time(nullptr)) + 3600;
  const std::string crowded = with_after_first_uid(pub, forged(pub, first_uid(pub), 0x13, 40, soon));
  int kept = 0;
  for (int i = 0; i < 40; ++i) {
    const auto out = parse_keys(crowded, {});
    if (out.keys.size() == 1 && out.keys[0].info.uids.size() == 2) ++kept;
  }
  // Each parse verifies 8 of the 41 at random besides the 8 newest: the real one is among them
  // about one time in four.
  CHECK(kept > 0);
  CHECK(kept < 40);
}

TEST_CASE("copies of a real self-signature under forged user IDs leave the key whole",
          "[keys][unit]") {
  // RNP folds identical signatures into one and attributes it to the last place it stands: a
  // forged user ID carrying a copy of the real self-signature, put after the real one, made the
  // real user ID read as unsigned and the key could not be exported (refused whole: a copy of a
  // victim's key padded so on a keyserver could not be fetched, nor revoke a cached one).
  for (const char* file : {"frank.asc", "alice.asc"}) {
    INFO(file);
    const std::string pub = packets_of(file);
    std::string copies;  // five user IDs, each with the real self-signature's exact bytes
    for (int i = 0; i < 5; ++i) {
      copies += hkp::make_packet(13, "Fake " + std::to_string(i) + " <f@x.example>") +
                first_uid_self_signature(pub);
    }
    const auto out = parse_keys(with_after_first_uid(pub, copies), {});
    REQUIRE(out.keys.size() == 1);
    CHECK(out.keys[0].info.uids.size() == parse_keys(pub, {}).keys.at(0).info.uids.size());
    CHECK(out.dropped.at("copied_signature") == 5);
    for (const auto& u : out.keys[0].info.uids) CHECK(u.text.find("Fake") == std::string::npos);
  }
  // The same for one forged signature copied under several forged user IDs: it belongs to none
  // of them (its hash prefix is the real user ID's), and the key stays whole.
  const std::string pub = packets_of("alice.asc");
  const std::string forged = altered_signature(first_uid_self_signature(pub), 7);
  std::string copies;
  for (int i = 0; i < 5; ++i) {
    copies += hkp::make_packet(13, "Fake " + std::to_string(i) + " <f@x.example>") + forged;
  }
  const auto out = parse_keys(with_after_first_uid(pub, copies), {});
  REQUIRE(out.keys.size() == 1);
  CHECK(out.keys[0].info.uids.size() == 2);
}
