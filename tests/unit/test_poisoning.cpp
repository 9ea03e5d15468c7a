// Attacks on a cached key through a merge (what an unauthenticated /pks/add or a hostile upstream
// can send): every shape is merged into the cached copy, and the cached copy must come out
// byte for byte as it was. Also the structural limits (user IDs, subkeys) and their reasons.
#include <catch2/catch.hpp>

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

std::string repeat(const std::string& packet, int n) {
  std::string out;
  for (int i = 0; i < n; ++i) out += packet;
  return out;
}

// `count` distinct forged signatures of `type` by `issuer`.
std::string forged(int type, const std::string& issuer, int count) {
  std::string out;
  for (int i = 0; i < count; ++i) {
    out += forged_signature(type, issuer, 1700000000u + static_cast<std::uint32_t>(i));
  }
  return out;
}

// The text of a key's first user ID.
std::string first_uid_of(const std::string& key) {
  const auto packets = hkp::split_packets(key);
  if (!packets) return {};
  for (const auto& p : *packets) {
    if (p.tag == hkp::tag::user_id) return std::string(p.body);
  }
  return {};
}

const std::string kStranger("\x00\xC0\xFF\xEE\x00\xC0\xFF\xEE", 8);

}  // namespace

TEST_CASE("no shape of forged signature changes a cached key through a merge", "[keys][unit]") {
  const std::string fpr = fixture("ALICE_FPR");
  const std::string cached = cached_copy("alice.asc");
  const std::string pub = packets_of("alice.asc");
  const std::string me = primary_keyid(pub);
  config::KeysConfig limits;  // the defaults

  struct Attack {
    const char* name;
    std::string incoming;
  };
  std::string binding_copy;
  {
    // A copy of the real subkey binding with one byte changed: issued by the primary key,
    // placed after the subkey, and it does not verify.
    const auto ps = split_packets(pub);
    REQUIRE(ps);
    for (std::size_t i = 0; i + 1 < ps->size(); ++i) {
      if ((*ps)[i].tag == tag::public_subkey) binding_copy = std::string((*ps)[i + 1].whole);
    }
    REQUIRE_FALSE(binding_copy.empty());
  }
  std::string forged_bindings;
  for (int i = 0; i < 1000; ++i) {
    std::string b = binding_copy;
    b[b.size() - 1 - (i % 30)] = static_cast<char>(b[b.size() - 1 - (i % 30)] ^ (1 + i / 30));
    forged_bindings += b;
  }
  const Attack attacks[] = {
      {"7000 third-party certifications after the subkey",
       with_after_first_subkey(pub, forged(0x10, kStranger, 7000))},
      {"1000 certifications by the primary key after the subkey",
       with_after_first_subkey(pub, forged(0x13, me, 1000))},
      {"1000 forged subkey bindings", with_after_first_subkey(pub, forged_bindings)},
      {"forged subkey revocations", with_after_first_subkey(pub, forged(0x28, me, 50))},
      {"forged key revocations", with_after_primary(pub, forged(0x20, me, 50))},
      {"forged direct-key signatures", with_after_primary(pub, forged(0x1F, me, 50))},
      {"forged certification revocations", with_after_first_uid(pub, forged(0x30, me, 50))},
      {"forged self-certifications", with_after_first_uid(pub, forged(0x13, me, 2000))},
      {"1000 copies of the valid self-signature",
       with_after_first_uid(pub, repeat(first_uid_self_signature(pub), 1000))},
      {"unknown and document signature types everywhere",
       with_after_primary(with_after_first_uid(with_after_first_subkey(pub, forged(0x77, me, 100)),
                                               forged(0x00, me, 100) + forged(0x40, me, 100)),
                          forged(0x01, kStranger, 100) + forged(0x50, me, 100))},
      {"10000 one-byte signature packets",
       with_after_first_uid(pub, repeat(make_packet(tag::signature, "\x04"), 10000))},
      {"a third-party flood over max_third_party_sigs on the user ID",
       flooded(pub, 1500)},
  };
  for (const auto& a : attacks) {
    INFO(a.name);
    auto m = merge_key(cached, a.incoming, fpr, limits);
    REQUIRE(m);
    CHECK_FALSE(m->changed);
    CHECK(m->key.packets.size() == cached.size());
    CHECK(m->key.packets == cached);
    CHECK_FALSE(m->key.info.revoked);
    // And the attack alone, as a first upload, is cleaned down to the same key.
    const auto alone = parse_keys(a.incoming, limits);
    REQUIRE(alone.keys.size() == 1);
    CHECK(alone.keys[0].packets == cached);
  }
}

TEST_CASE("third-party signatures count against the policy wherever they stand", "[keys][unit]") {
  const std::string pub = packets_of("alice.asc");
  config::KeysConfig limits;
  limits.third_party_sigs = config::ThirdPartySigs::keep;
  // After the subkey a certification never stands, whatever the policy.
  const auto misplaced = parse_keys(with_after_first_subkey(pub, forged(0x10, kStranger, 10)), limits);
  REQUIRE(misplaced.keys.size() == 1);
  CHECK(misplaced.dropped.at("misplaced_signature") == 10);
  CHECK(signature_count(misplaced.keys[0].packets) == 3);
  // On the direct-key slot a third-party key revocation (a designated revoker's) is counted
  // like any third-party signature: 600 there plus 600 on the user ID pass the limit together.
  limits.third_party_sigs = config::ThirdPartySigs::strip_if_oversize;
  const std::string both = with_after_primary(flooded(pub, 600), forged(0x20, kStranger, 600));
  const auto out = parse_keys(both, limits);
  REQUIRE(out.keys.size() == 1);
  CHECK(out.dropped.at("third_party_signature") == 1200);
  CHECK(signature_count(out.keys[0].packets) == 3);
}

TEST_CASE("a revocation in the cached copy survives any flood of forged revocations",
          "[keys][unit]") {
  const std::string fpr = fixture("CAROL_FPR");
  const std::string cached = cached_copy("carol.asc");  // revoked
  const std::string pub = packets_of("carol-unrevoked.asc");
  const std::string me = primary_keyid(pub);
  // Newer forged key revocations than the real one: they would win a "newest first" budget.
  std::string newer;
  for (int i = 0; i < 200; ++i) newer += forged_signature(0x20, me, 2000000000u + i);
  auto m = merge_key(cached, with_after_primary(pub, newer), fpr, {});
  REQUIRE(m);
  CHECK(m->key.info.revoked);
  CHECK(m->key.packets == cached);
}

TEST_CASE("max_user_ids and max_subkeys refuse a key whole, with the count", "[keys][unit]") {
  const std::string pub = packets_of("alice.asc");
  config::KeysConfig limits;
  limits.max_subkeys = 10;
  limits.max_user_ids = 10;

  const auto subs = parse_keys(with_fake_subkeys(pub, 20), limits);
  CHECK(subs.keys.empty());
  REQUIRE(subs.rejected.size() == 1);
  CHECK(subs.rejected[0].fingerprint == fixture("ALICE_FPR"));
  CHECK(subs.rejected[0].code == GPG_ERR_TOO_LARGE);
  CHECK(subs.rejected[0].reason == "key has 21 subkeys, over max_subkeys (10)");

  const auto uids = parse_keys(with_fake_uids(pub, 20), limits);
  CHECK(uids.keys.empty());
  REQUIRE(uids.rejected.size() == 1);
  CHECK(uids.rejected[0].reason == "key has 22 user IDs, over max_user_ids (10)");

  // Within the limits, the fake ones are dropped by verification and the key stays.
  const auto within = parse_keys(with_fake_subkeys(pub, 5), limits);
  REQUIRE(within.keys.size() == 1);
  CHECK(within.keys[0].info.subkeys.size() == 1);
  CHECK(within.dropped.at("invalid_subkey") == 5);

  // A merge that would pass a limit keeps the cached copy as it was.
  limits.max_subkeys = 3;
  const std::string cached = cached_copy("alice.asc");
  auto m = merge_key(cached, with_fake_subkeys(pub, 3), fixture("ALICE_FPR"), limits);
  CHECK_FALSE(m);  // refused: merge_with_cached keeps the cached copy
}

TEST_CASE("filter_keys is linear: copies fold, budgets bound what RNP verifies", "[keys][unit]") {
  const std::string pub = packets_of("alice.asc");
  const std::string me = primary_keyid(pub);
  config::KeysConfig limits;
  // Two copies of the key and a third with 100 forged self-certifications on the user ID.
  std::string sigs;  // forged as one who knows the key would: hash prefixes right
  for (std::uint32_t i = 0; i < 100; ++i) sigs += forged_signature_on(pub, first_uid_of(pub), 0x13, 1700000000u + i);
  const std::string three = pub + pub + with_after_first_uid(pub, sigs);
  const auto f = filter_keys(three, limits);
  REQUIRE(f.keys.size() == 1);
  CHECK(f.primaries == 1);
  CHECK(f.keys[0].fingerprint == fixture("ALICE_FPR"));
  // 16 new self-signatures at most per user ID reach RNP: the real one and 15 of the forged.
  CHECK(f.dropped.at("excess_signature") == 100 + 1 - 16);
  // Stops counting past max_keys.
  const auto many = filter_keys(pub + packets_of("bob.asc") + packets_of("erin.asc"), limits, 0, 2);
  CHECK(many.primaries == 3);
  CHECK(many.keys.empty());
}

TEST_CASE("a user ID dropped for its size is named as the reason a key is refused",
          "[keys][unit]") {
  // The primary key and one 900 KB user ID with a copy of a real self-signature: nothing else.
  const std::string pub = packets_of("alice.asc");
  const auto ps = split_packets(pub);
  REQUIRE(ps);
  std::string text = "Huge <huge@example.org> ";
  text.resize(900'000, 'x');
  const std::string key = std::string((*ps)[0].whole) + make_packet(tag::user_id, text) +
                          first_uid_self_signature(pub);
  config::KeysConfig limits;
  limits.max_key_bytes = 2 << 20;
  const auto out = parse_keys(key, limits);
  CHECK(out.keys.empty());
  REQUIRE(out.rejected.size() == 1);
  CHECK(out.rejected[0].code == GPG_ERR_TOO_LARGE);
  CHECK(out.rejected[0].reason ==
        "no valid self-signature is left: a user ID of 900006 bytes was over max_packet_bytes "
        "(8192) and dropped");
}

TEST_CASE("armor is decoded strictly", "[keys][unit]") {
  const std::string armored = read_file(data_dir() + "/alice.asc");
  REQUIRE(dearmor(armored).has_value());
  CHECK(dearmor(armored)->binary == dearmor(armor_public_keys(dearmor(armored)->binary))->binary);

  SECTION("a damaged checksum") {
    std::string bad = armor_public_keys(packets_of("alice.asc"));
    const auto crc = bad.rfind("\n=");
    REQUIRE(crc != std::string::npos);
    bad[crc + 2] = bad[crc + 2] == 'A' ? 'B' : 'A';
    const auto d = dearmor(bad);
    REQUIRE_FALSE(d.has_value());
    CHECK(d.error().status == 400);
    CHECK(d.error().code == GPG_ERR_INV_ARMOR);
    CHECK(d.error().detail.find("CRC-24") != std::string::npos);
    const auto parsed = parse_keys(bad, {});
    REQUIRE(parsed.bad_input);
    CHECK(parsed.keys.empty());
  }
  SECTION("a damaged body") {
    std::string bad = armor_public_keys(packets_of("alice.asc"));
    bad[bad.find("\n\n") + 10] = '*';
    const auto d = dearmor(bad);
    REQUIRE_FALSE(d.has_value());
    CHECK(d.error().detail.find("outside base64") != std::string::npos);
  }
  SECTION("labels that are not a public key") {
    std::string msg = armor_public_keys(packets_of("alice.asc"));
    for (const std::string& label : std::vector<std::string>{"MESSAGE", "SIGNATURE", "ARMORED FILE"}) {
      std::string m = msg;
      for (auto at = m.find("PUBLIC KEY BLOCK"); at != std::string::npos;
           at = m.find("PUBLIC KEY BLOCK")) {
        m.replace(at, 16, label);
      }
      const auto d = dearmor(m);
      REQUIRE_FALSE(d.has_value());
      CHECK(d.error().detail.find("PGP " + label) != std::string::npos);
    }
    const auto secret = dearmor(read_file(data_dir() + "/alice-secret.asc"));
    REQUIRE(secret.has_value());
    CHECK(secret->private_block);
    CHECK(parse_keys(read_file(data_dir() + "/alice-secret.asc"), {}).secret_material);
  }
  SECTION("a block without its END line, or with another label there") {
    std::string cut = armor_public_keys(packets_of("alice.asc"));
    cut.resize(cut.find("-----END"));
    CHECK(dearmor(cut).error().detail.find("no END line") != std::string::npos);
    std::string other = armor_public_keys(packets_of("alice.asc"));
    other.replace(other.find("END PGP PUBLIC KEY BLOCK"), 24, "END PGP PRIVATE KEY BLOCK");
    CHECK(dearmor(other).error().detail.find("ends with") != std::string::npos);
  }
  SECTION("text around blocks, several blocks, no checksum line") {
    const std::string a = armor_public_keys(packets_of("alice.asc"));
    std::string nocrc = armor_public_keys(packets_of("bob.asc"));
    nocrc.erase(nocrc.rfind("\n=") + 1, 6);
    const auto d = dearmor("Here is my key:\n" + a + "and another\r\n" + nocrc + "bye\n");
    REQUIRE(d.has_value());
    CHECK(d->binary == packets_of("alice.asc") + packets_of("bob.asc"));
  }
}

TEST_CASE("RSA and DSA parameters beyond any implementation's are refused before verification",
          "[keys][unit]") {
  const std::string pub = packets_of("bob.asc");  // RSA-2048 with an RSA subkey
  // A 16,383-bit public exponent made each forged self-signature cost over a second.
  const auto huge = parse_keys(with_rsa_exponent(pub, 16383), {});
  CHECK(huge.keys.empty());
  REQUIRE(huge.rejected.size() == 1);
  CHECK(huge.rejected[0].code == GPG_ERR_BAD_PUBKEY);
  CHECK_THAT(huge.rejected[0].reason,
             Catch::Matchers::Contains("RSA public exponent has 16383 bits, over the 64"));
  CHECK(absurd_key_parameters(split_packets(with_rsa_exponent(pub, 65))->at(0).body));
  CHECK_FALSE(absurd_key_parameters(split_packets(with_rsa_exponent(pub, 64))->at(0).body));
  CHECK_FALSE(absurd_key_parameters(split_packets(pub)->at(0).body));  // e = 65537

  // As a subkey: it goes (its back-signature would cost as much), the key stays.
  const std::string alice = packets_of("alice.asc");
  const std::string absurd_sub =
      make_packet(tag::public_subkey, std::string(split_packets(with_rsa_exponent(pub, 8192))->at(0).body)) +
      forged_signature(0x18, primary_keyid(alice), 1700000000u);
  const auto sub = parse_keys(alice + absurd_sub, {});
  REQUIRE(sub.keys.size() == 1);
  CHECK(sub.keys[0].info.subkeys.size() == 1);  // alice's own
  CHECK(sub.dropped.at("absurd_subkey") == 1);
}

TEST_CASE("an upstream answer's keys past the verification budget are not verified",
          "[keys][unit]") {
  // Six made-up 8,192-bit keys with 128 right-prefix forged self-signatures each: each trimmed to
  // its own budget (a quarter second), together over the answer's (one second).
  std::string answer;
  for (int i = 0; i < 6; ++i) answer += forged_rsa_key(8192, 64, 8, 16, 200 + i);
  config::KeysConfig limits;
  const auto first = parse_keys(answer, limits, SIZE_MAX, VerifyBudget::first_keys);
  CHECK(first.over_budget_keys == 2);  // 4 x 250 ms fit, the last two are not looked at
  CHECK(first.dropped.at("verification_budget_key") == 2);
  CHECK(first.dropped.at("verification_budget") > 0);  // each key trimmed to its own budget
  // A client's submission of the same bytes: none verified.
  const auto all = parse_keys(answer, limits, SIZE_MAX, VerifyBudget::all_or_nothing);
  CHECK(all.over_budget_keys == 6);
  CHECK(all.rejected.empty());  // nothing reached RNP to be refused
}
