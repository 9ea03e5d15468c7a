// Revocations reach users through the gateway (issue: "revocations reach every user"): real gpg
// verifying a signature by a subkey of a revoked or expired key, asking the gateway for the
// issuer as gpg --auto-key-retrieve does; every lookup form of such keys; upstream copies padded
// or crowded so that a cached key would have missed its revocation.
#include <catch2/catch.hpp>

#include <ctime>

#include "support/actors.hpp"
#include "support/forge.hpp"

using namespace hkpgw::test;
using Catch::Matchers::Contains;

namespace {

// A verifier in a fresh home: gpg --auto-key-retrieve fetches the signing (sub)key by the issuer
// fingerprint in the signature, from the gateway.
RunResult verify(const Gateway& gw, const std::string& name) {
  Gpg verifier;
  return verifier({"--auto-key-retrieve", "--verify", data_dir() + "/" + name + "-message.sig",
                   data_dir() + "/" + name + "-message.txt"},
                  gw.hkp_url());
}


}  // namespace

TEST_CASE("gpg verifying a signature by a revoked key's subkey is told it was revoked",
          "[integration][gpg][revocation]") {
  TempDir dir;
  TestKeyserver ks(dir, "ks", "server", "normal", {"frank-unrevoked.asc"});
  Gateway gw{GatewayConfig(dir).upstreams({{"ks", ks.url()}})};
  REQUIRE(gw.started());
  const std::string fpr = fixture("FRANK_FPR");

  // Before the revocation, the signature checks out (and the key is now cached).
  const auto before = verify(gw, "frank");
  INFO(before.err);
  REQUIRE(before.exit_code == 0);
  CHECK_THAT(before.err, Contains("Good signature from \"Frank Revoked <frank@example.org>\""));

  // The owner revokes his key and sends it through the gateway, as gpg does.
  Gpg owner;
  REQUIRE(owner({"--import", data_dir() + "/frank.asc"}).exit_code == 0);
  const auto sent = owner({"--send-keys", fpr}, gw.hkp_url());
  INFO(sent.err);
  REQUIRE(sent.exit_code == 0);

  const auto after = verify(gw, "frank");
  INFO(after.err);
  CHECK_THAT(after.err, Contains("This key has been revoked by its owner!"));
  CHECK_THAT(after.err, Contains("Frank Revoked <frank@example.org>"));

  // Every lookup form finds the revoked key, its subkeys' IDs included, and says revoked.
  for (const char* name : {"FRANK_FPR", "FRANK_SIGN_FPR", "FRANK_ENC_FPR"}) {
    const std::string id = fixture(name);
    for (const std::string& search : {id, id.substr(24)}) {
      const auto got = gw.get("/pks/lookup?op=get&options=mr&search=0x" + search);
      INFO(name << " " << search);
      CHECK(got.status == 200);
      const auto listed = gw.get("/pks/lookup?op=index&options=mr&search=0x" + search);
      CHECK(listed.status == 200);
      CHECK(pub_line(listed).ends_with(":r"));
    }
  }
  const auto by_email = gw.get("/pks/lookup?op=get&options=mr&exact=on&search=frank@example.org");
  CHECK(by_email.status == 200);
  const auto vks = gw.get("/vks/v1/by-fingerprint/" + fixture("FRANK_SIGN_FPR"));
  CHECK(vks.status == 200);
}

TEST_CASE("gpg verifying a signature by an expired key's subkey finds the key",
          "[integration][gpg][revocation]") {
  TempDir dir;
  TestKeyserver ks(dir, "ks", "server", "normal", {"gina.asc"});
  Gateway gw{GatewayConfig(dir).upstreams({{"ks", ks.url()}})};
  REQUIRE(gw.started());
  const auto r = verify(gw, "gina");
  INFO(r.err);
  // The key is found and the signature checks out; gpg says the key has expired.
  CHECK_THAT(r.err, Contains("Good signature from \"Gina Expired <gina@example.org>\""));
  CHECK_THAT(r.err, Contains("expired"));
  CHECK_FALSE(Catch::Matchers::Contains("No public key").match(r.err));
  for (const char* name : {"GINA_FPR", "GINA_SIGN_FPR", "GINA_ENC_FPR"}) {
    const std::string id = fixture(name);
    for (const std::string& search : {id, id.substr(24)}) {
      INFO(name << " " << search);
      CHECK(gw.get("/pks/lookup?op=get&options=mr&search=0x" + search).status == 200);
    }
  }
  CHECK(ks.lookups() == 1);  // every later lookup answered by the cache
}

TEST_CASE("a padded or crowded upstream copy still brings the revocation to the cached key",
          "[integration][revocation]") {
  const std::string fpr = fixture("FRANK_FPR");
  const std::string revoked = key_packets(read_file(data_dir() + "/frank.asc"));
  const std::string me = primary_keyid(revoked);
  // Newer than the genuine one, yet within the day's clock skew (later ones are dropped unread).
  const auto soon = static_cast<std::uint32_t>(std::time(nullptr)) + 3600;
  std::string newer_forgeries;
  for (std::uint32_t i = 0; i < 8; ++i) newer_forgeries += forged_signature(0x20, me, soon + i);
  struct Shape {
    const char* name;
    std::string copy;
  };
  const Shape shapes[] = {
      {"100 bare user IDs", with_bare_uids(revoked, 100)},
      {"101 bare subkeys", with_bare_subkeys(revoked, 101)},
      {"101 user IDs with forged self-signatures (refused whole)", with_fake_uids(revoked, 101)},
      {"8 forged revocations newer than the genuine one",
       with_after_primary(revoked, newer_forgeries)},
  };
  for (const auto& shape : shapes) {
    DYNAMIC_SECTION(shape.name) {
      TempDir dir;
      TestKeyserver ks(dir, "ks", "server", "normal", {"frank-unrevoked.asc"});
      // Cached copies are asked for again after a second, so the next lookup is a refresh.
      Gateway gw{GatewayConfig(dir)
                     .upstreams({{"ks", ks.url()}})
                     .cache("fresh_for = \"1s\"\nstale_while_revalidate = \"0s\"\n")};
      REQUIRE(gw.started());
      const auto first = gw.get("/pks/lookup?op=index&options=mr&search=0x" + fpr);
      REQUIRE(first.status == 200);
      CHECK_FALSE(pub_line(first).ends_with(":r"));

      REQUIRE(ks.serve_raw(shape.copy));
      std::this_thread::sleep_for(std::chrono::milliseconds(1100));  // past fresh_for
      const auto refreshed = gw.get("/pks/lookup?op=index&options=mr&search=0x" + fpr);
      INFO(refreshed.body);
      CHECK(refreshed.status == 200);
      CHECK(pub_line(refreshed).ends_with(":r"));
      CHECK(ks.lookups() == 2);
      // Nothing of the padding was kept: one user ID, two subkeys.
      const auto got = gw.get("/pks/lookup?op=index&options=mr&search=0x" + fpr);
      CHECK(count_of(got.body, "\nuid:") == 1);
      CHECK_FALSE(Catch::Matchers::Contains("Padding").match(got.body));
      CHECK_FALSE(Catch::Matchers::Contains("Fake").match(got.body));
    }
  }
}

TEST_CASE("a submission padded past max_user_ids or crowded with forgeries still revokes the "
          "cached key", "[integration][revocation]") {
  const std::string revoked = key_packets(read_file(data_dir() + "/frank.asc"));
  const auto soon = static_cast<std::uint32_t>(std::time(nullptr)) + 3600;  // within the skew
  std::string newer_forgeries;
  for (std::uint32_t i = 0; i < 8; ++i) {
    newer_forgeries += forged_signature(0x20, primary_keyid(revoked), soon + i);
  }
  const std::pair<const char*, std::string> shapes[] = {
      {"101 user IDs with forged self-signatures", with_fake_uids(revoked, 101)},
      {"8 forged revocations newer than the genuine one",
       with_after_primary(revoked, newer_forgeries)},
  };
  for (const auto& [name, copy] : shapes) {
    DYNAMIC_SECTION(name) {
      TempDir dir;
      TestKeyserver ks(dir, "ks", "server", "normal", {"frank-unrevoked.asc"});
      Gateway gw{GatewayConfig(dir).upstreams({{"ks", ks.url()}})};
      REQUIRE(gw.started());
      const std::string fpr = fixture("FRANK_FPR");
      REQUIRE(gw.get(get_target(fpr)).status == 200);
      const auto r = post_add(gw, "keytext=" + percent_encode_all(copy));
      INFO(r.body);
      CHECK(r.status == 200);
      CHECK_THAT(r.body, Contains(fpr + ": updated"));
      CHECK(pub_line(gw.get(index_target(fpr))).ends_with(":r"));
      // Only the revocation was taken: what is served has the one real user ID.
      CHECK(count_of(gw.get(index_target(fpr)).body, "\nuid:") == 1);
    }
  }
}

TEST_CASE("OpenPGP.js reads the revoked and the expired key whole from the gateway",
          "[integration][openpgpjs][revocation]") {
  TempDir dir;
  TestKeyserver ks(dir, "ks", "server", "normal", {"frank.asc", "gina.asc"});
  Gateway gw{GatewayConfig(dir).upstreams({{"ks", ks.url()}})};
  REQUIRE(gw.started());
  // What a client built on OpenPGP.js sees of each served copy (tests/js/read_keys.mjs).
  auto read = [&](const std::string& fpr) {
    const auto r = gw.get(get_target(fpr));
    REQUIRE(r.status == 200);
    const auto js = openpgpjs_read(dir / (fpr + ".asc"), r.body);
    INFO(js.err);
    REQUIRE(js.exit_code == 0);
    return js.out;
  };
  const std::string frank = read(fixture("FRANK_FPR"));
  INFO(frank);
  CHECK_THAT(frank, Contains("\"revoked\":true"));
  CHECK_THAT(frank, Contains(fixture("FRANK_SIGN_FPR")));
  CHECK_THAT(frank, Contains(fixture("FRANK_ENC_FPR")));
  CHECK_THAT(frank, Contains("Frank Revoked <frank@example.org>"));

  const std::string gina = read(fixture("GINA_FPR"));
  INFO(gina);
  CHECK_THAT(gina, Contains("\"revoked\":false"));
  CHECK_THAT(gina, Contains(fixture("GINA_SIGN_FPR")));
  CHECK_THAT(gina, Contains(fixture("GINA_ENC_FPR")));
  const auto at = gina.find("\"expires\":");
  REQUIRE(at != std::string::npos);
  const long long expires = std::stoll(gina.substr(at + 10));
  CHECK(expires > 0);
  CHECK(expires < std::time(nullptr));  // expired in 2021, and OpenPGP.js says so
}

TEST_CASE("a designated revoker's revocation reaches gpg through the gateway",
          "[integration][gpg][revocation]") {
  TempDir dir;
  TestKeyserver ks(dir, "ks", "server", "normal", {"judy.asc"});
  Gateway gw{GatewayConfig(dir)
                 .upstreams({{"ks", ks.url()}})
                 .upstreams_table("forward_adds = \"none\"\n")};
  REQUIRE(gw.started());
  const std::string judy = fixture("JUDY_FPR");
  REQUIRE(gw.get(get_target(judy)).status == 200);  // cached, unrevoked

  // What gpg --desig-revoke wrote, sent as gpg --send-keys would send it.
  const std::string revocation = read_file(data_dir() + "/judy-desig-revocation.asc");
  const HttpResult sent = post_add(gw, "keytext=" + percent_encode_all(revocation));
  INFO(sent.body);
  REQUIRE(sent.status == 200);
  CHECK_THAT(sent.body, Contains(judy + ": updated"));

  // A verifier who has the revoker's key learns that judy's key is revoked. gpg's keyserver
  // imports default to self-sigs-only, which skips every other key's signature, a designated
  // revoker's too (docs/clients.md): this verifier turns that off.
  Gpg verifier;
  REQUIRE(verifier({"--import", data_dir() + "/ivan.asc"}).exit_code == 0);
  const auto got = verifier({"--keyserver-options", "no-self-sigs-only", "--recv-keys", judy},
                            gw.hkp_url());
  INFO(got.err);
  REQUIRE(got.exit_code == 0);
  const auto listed = verifier({"--with-colons", "--list-keys", judy});
  CHECK_THAT(listed.out, Contains("pub:r:"));
}
