// Key validation, cleaning, limits and merging with RNP, on real keys made by gpg and on keys
// made wrong on purpose from them (tests/support/forge.*).
#include <catch2/catch.hpp>

#include <chrono>
#include <ctime>

#include "hkp/key_filter.hpp"
#include "hkp/keyring.hpp"
#include "hkp/packets.hpp"
#include "hkp/text.hpp"
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

namespace {

// The (type, issuer key ID) of every signature in binary packets, in order.
std::vector<std::pair<int, std::string>> signatures_in(const std::string& packets) {
  std::vector<std::pair<int, std::string>> out;
  const auto ps = split_packets(packets);
  REQUIRE(ps);
  for (const auto& p : *ps) {
    if (p.tag != tag::signature) continue;
    const auto f = read_signature(p.body);
    REQUIRE(f);
    out.emplace_back(f->type, f->issuer_keyid_hex());
  }
  return out;
}

bool signed_by(const std::string& packets, int type, const std::string& fpr) {
  const auto sigs = signatures_in(packets);
  return std::count(sigs.begin(), sigs.end(), std::pair<int, std::string>(type, fpr.substr(24))) > 0;
}

std::string binary_of(const std::string& file) {
  auto d = dearmor(read_file(data_dir() + "/" + file));
  REQUIRE(d.has_value());
  return d->binary;
}

}  // namespace

TEST_CASE("by default a key carries only what its owner signed", "[keys][unit]") {
  config::KeysConfig limits;  // third_party_sigs = strip
  const std::string kate = packets_of("kate-certified.asc");
  REQUIRE(signature_count(kate) == 3);  // her self-signature, the CA's and mallory's certification
  const std::string orgca = fixture("ORGCA_FPR"), mallory = fixture("MALLORY_FPR");

  SECTION("certifications by others are dropped") {
    const auto out = parse_keys(kate, limits);
    CHECK(signature_count(only_key(out).packets) == 1);
    CHECK(out.dropped.at("third_party_signature") == 2);
  }
  SECTION("certifications by a configured certifier are kept, verified; no one else's") {
    limits.certifiers = {orgca};
    limits.certifier_key_data = read_file(data_dir() + "/orgca.asc");
    const auto out = parse_keys(kate, limits);
    const std::string& served = only_key(out).packets;
    CHECK(signature_count(served) == 2);
    CHECK(signed_by(served, 0x10, orgca));
    CHECK_FALSE(signed_by(served, 0x10, mallory));
    // A certification claiming the CA that does not verify is dropped by the mathematics, and
    // a flood of them is capped before any verification.
    // A certification claiming the CA whose hash prefix is wrong costs a hash; 40 of them do
    // not displace the real one.
    const std::string ca_id = hkp::unhex(orgca.substr(24));
    std::string junk;
    for (int i = 0; i < 40; ++i) junk += forged_signature(0x10, ca_id, 1700000000u + i);
    const auto flood = parse_keys(with_after_first_uid(kate, junk), limits);
    CHECK(only_key(flood).packets == served);
    CHECK(flood.dropped.at("wrong_hash_prefix") == 40);
    // Right prefixes (65,536 tries each): at most 4 per certifier and user ID are verified, and
    // the mathematics drops them; the CA's certification in the cached copy is never displaced.
    const std::string uid = "Kate Certified <kate@example.org>";
    std::string forged;
    for (int i = 0; i < 40; ++i) {
      forged += forged_signature_on(kate, uid, 0x10, 1700000000u + i, ca_id);
    }
    const auto crowd = parse_keys(with_after_first_uid(kate, forged), limits);
    CHECK(signature_count(only_key(crowd).packets) <= 2);
    CHECK(crowd.dropped.at("third_party_signature") >= 40 + 1 - 4);
    CHECK(crowd.dropped.at("invalid_signature") >= 3);
    const auto merged = merge_key(served, with_after_first_uid(kate, forged), fixture("KATE_FPR"),
                                  limits);
    REQUIRE(merged);
    CHECK(merged->key.packets == served);
    CHECK_FALSE(merged->changed);
  }
  SECTION("without the certifier's key nothing of it can be kept") {
    limits.certifiers = {orgca};
    limits.certifier_key_data = read_file(data_dir() + "/mallory.asc");
    const auto out = parse_keys(kate, limits);
    CHECK(signature_count(only_key(out).packets) == 1);
    CHECK(out.dropped.at("invalid_signature") == 1);
  }
}

TEST_CASE("a designated revoker's revocation is kept, no other key's", "[keys][unit]") {
  config::KeysConfig limits;
  const std::string judy = packets_of("judy.asc");
  const std::string revocation = binary_of("judy-desig-revocation.asc");  // primary key, 0x20
  const std::string ivan = fixture("IVAN_FPR"), mallory = fixture("MALLORY_FPR");
  const std::string revoked = judy + revocation;

  const auto out = parse_keys(revoked, limits);
  const std::string& served = only_key(out).packets;
  CHECK(signed_by(served, 0x20, ivan));
  CHECK(out.dropped.count("third_party_signature") == 0);

  // Key revocations by anyone else: dropped, however many.
  std::string others;
  for (int i = 0; i < 999; ++i) {
    others += forged_signature(0x20, hkp::unhex(mallory.substr(24)), 1700000000u + i);
  }
  const auto flood = parse_keys(with_after_primary(revoked, others), limits);
  CHECK(only_key(flood).packets == served);
  CHECK(flood.dropped.at("third_party_signature") == 999);

  // Ivan's are capped too: a designated revoker revokes once or twice, never 50 times.
  std::string ivans;
  for (int i = 0; i < 50; ++i) {
    ivans += forged_signature(0x20, hkp::unhex(ivan.substr(24)), 1700000000u + i);
  }
  const auto capped = parse_keys(with_after_primary(revoked, ivans), limits);
  CHECK(signature_count(only_key(capped).packets) <= signature_count(served) + 1);

  // On a key that names no revoker (alice), ivan's revocation is anyone's.
  const auto ps = split_packets(revocation);
  REQUIRE(ps);
  std::string ivans_revocation;
  for (const auto& p : *ps) {
    if (p.tag == tag::signature && read_signature(p.body)->type == 0x20) ivans_revocation = p.whole;
  }
  REQUIRE_FALSE(ivans_revocation.empty());
  const auto foreign =
      parse_keys(with_after_primary(packets_of("alice.asc"), ivans_revocation), limits);
  CHECK(only_key(foreign).packets == cached_copy("alice.asc"));
  CHECK(foreign.dropped.at("third_party_signature") == 1);
}

TEST_CASE("a forged designation does not let its revoker's signatures stay", "[keys][unit]") {
  config::KeysConfig limits;
  const std::string alice = packets_of("alice.asc");
  const std::string mallory = fixture("MALLORY_FPR");
  std::string revocations;
  for (int i = 0; i < 2; ++i) {
    revocations += forged_signature(0x20, hkp::unhex(mallory.substr(24)), 1700000000u + i);
  }
  const std::string attacked =
      with_after_primary(alice, forged_designation(alice, hkp::unhex(mallory)) + revocations);
  const auto out = parse_keys(attacked, limits);
  CHECK(only_key(out).packets == cached_copy("alice.asc"));
}

TEST_CASE("a forged signature dated in the future proves nothing", "[keys][unit]") {
  // RNP 0.16 answers "expired" for a signature made after its clock, before it says whether the
  // signature is correct at all: taken as proof, a forged binding dated tomorrow bound a stranger's
  // subkey to the key, and forged self-signatures grew it.
  const std::string alice = packets_of("alice.asc");
  const std::string uid = "Alice Example <alice@example.org>";
  const auto now = static_cast<std::uint32_t>(std::time(nullptr));
  for (const std::uint32_t ahead : {3600u, 10u * 86400u}) {
    CAPTURE(ahead);
    const auto subkey = parse_keys(with_fake_subkeys(alice, 1, now + ahead), {});
    CHECK(only_key(subkey).info.subkeys.size() == 1);
    CHECK(only_key(subkey).packets == cached_copy("alice.asc"));
    const auto cert = parse_keys(with_after_first_uid(alice, forged_signature_on(alice, uid, 0x13,
                                                                                 now + ahead)),
                                 {});
    CHECK(only_key(cert).packets == cached_copy("alice.asc"));
  }
}

TEST_CASE("keys.certifier_keys is checked against keys.certifiers when a config loads",
          "[keys][config][unit]") {
  config::KeysConfig keys;
  CHECK(certifier_problems(keys).empty());  // nothing configured
  keys.certifiers = {fixture("ORGCA_FPR")};
  keys.certifier_keys = "/etc/hkp-gateway/certifiers.asc";
  keys.certifier_key_data = read_file(data_dir() + "/orgca.asc");
  CHECK(certifier_problems(keys).empty());
  keys.certifier_key_data = read_file(data_dir() + "/mallory.asc");
  auto problems = certifier_problems(keys);
  REQUIRE(problems.size() == 1);
  CHECK(problems[0] == "keys.certifiers[0]: " + fixture("ORGCA_FPR") +
                           " is not among the keys of \"/etc/hkp-gateway/certifiers.asc\"");
  keys.certifier_key_data = read_file(data_dir() + "/alice-secret.asc");
  problems = certifier_problems(keys);
  REQUIRE_FALSE(problems.empty());
  CHECK(problems[0] == "keys.certifier_keys: \"/etc/hkp-gateway/certifiers.asc\" holds secret key "
                       "material: give the public keys only");
  keys.certifier_key_data = "a list of fingerprints, not keys\n";
  problems = certifier_problems(keys);
  REQUIRE(problems.size() == 1);
  CHECK(problems[0] == "keys.certifier_keys: \"/etc/hkp-gateway/certifiers.asc\" is not OpenPGP: "
                       "expected the certifiers' public keys");
}
