// Modern keys through the running gateway (RFC 9580): keys OpenPGP.js 6 makes (v4 with Ed25519
// and X25519, and v6) and keys made here with OpenSSL, uploaded on every path, fetched from an
// upstream, served where clients can read them and never where they break one: gpg 2.2 fails a
// whole import on one v6 certificate, so HKP answers carry v4 keys only.
#include <catch2/catch.hpp>
#include <cctype>
#include <sstream>

#include "hkp/armor.hpp"
#include "hkp/modern.hpp"
#include "hkp/packets.hpp"
#include "support/actors.hpp"
#include "support/modern_forge.hpp"

using namespace hkpgw::test;
using Catch::Matchers::Contains;
namespace forge = hkpgw::test::modern_forge;

namespace {

std::string openpgpjs_fixture(const std::string& name) {
  return read_file(std::string(HKPGW_SOURCE_DIR) + "/tests/fixtures/openpgpjs/" + name);
}


// The fingerprint OpenPGP.js reads in an answer (tests/js/read_keys.mjs), one per key.
std::vector<std::string> openpgpjs_fingerprints(const TempDir& dir, const std::string& name,
                                                const std::string& answer) {
  const auto js = openpgpjs_read(dir / name, answer);
  INFO(js.err);
  REQUIRE(js.exit_code == 0);
  std::vector<std::string> out;  // a line per key; its subkeys' fingerprints come later on it
  std::istringstream lines(js.out);
  const std::string head = "{\"fingerprint\":\"";
  for (std::string line; std::getline(lines, line);) {
    if (line.starts_with(head))
      out.push_back(line.substr(head.size(), line.find('"', head.size()) - head.size()));
  }
  return out;
}

std::string binary_of(const std::string& armored) {
  auto d = hkpgw::hkp::dearmor(armored);
  REQUIRE(d.has_value());
  return d->binary;
}

std::string fingerprint_of(const std::string& armored) {
  auto d = hkpgw::hkp::dearmor(armored);
  REQUIRE(d.has_value());
  const auto first = hkpgw::hkp::first_packet(d->binary);
  REQUIRE(first);
  const auto k = hkpgw::hkp::modern::parse_key(first->body);
  REQUIRE(k);
  return hkpgw::hkp::modern::fingerprint_hex(*k);
}

}  // namespace

TEST_CASE(
    "OpenPGP.js keys are accepted on every upload path and served to the clients that read "
    "them",
    "[integration][modern][openpgpjs]") {
  TempDir dir;
  TestKeyserver ks(dir, "ks", "server", "normal", {});
  Gateway gw{GatewayConfig(dir).upstreams({{"ks", ks.url()}})};
  REQUIRE(gw.started());
  const std::string v4 = openpgpjs_fixture("curve25519-v4.asc");
  const std::string v6 = openpgpjs_fixture("curve25519-v6.asc");
  const std::string v4_fpr = fingerprint_of(v4), v6_fpr = fingerprint_of(v6);
  REQUIRE(v4_fpr.size() == 40);
  REQUIRE(v6_fpr.size() == 64);

  // The v4 key through /pks/add as gpg sends it, the v6 one through VKS upload.
  const auto added = post_add(gw, "keytext=" + percent_encode_all(v4));
  INFO(added.body);
  REQUIRE(added.status == 200);
  const auto uploaded =
      http_request(gw.address(), "POST", "/vks/v1/upload", "{\"keytext\":" + json_quoted(v6) + "}",
                   {"Content-Type: application/json"});
  INFO(uploaded.body);
  REQUIRE(uploaded.status == 200);
  CHECK_THAT(uploaded.body, Contains(v6_fpr));

  // The v6 key by every identifier VKS and v2 take, byte for byte as its owner made it.
  const std::string v6_binary = binary_of(v6);
  for (const std::string& target :
       {"/vks/v1/by-fingerprint/" + v6_fpr, "/vks/v1/by-keyid/" + v6_fpr.substr(0, 16),
        std::string("/vks/v1/by-email/six%40example.org")}) {
    INFO(target);
    const auto r = gw.get(target);
    REQUIRE(r.status == 200);
    CHECK(binary_of(r.body) == v6_binary);
    CHECK(openpgpjs_fingerprints(dir, "vks.asc", r.body) == std::vector<std::string>{v6_fpr});
  }
  for (const std::string& target : {"/pks/v2/certs/by-vfingerprint/06" + v6_fpr,
                                    "/pks/v2/certs/by-keyid/" + v6_fpr.substr(0, 16),
                                    std::string("/pks/v2/certs/by-identity/six@example.org")}) {
    INFO(target);
    const auto r = gw.get(target);
    REQUIRE(r.status == 200);
    CHECK(r.body == v6_binary);
  }
  // The v2 index lists it as a v6 certificate.
  std::string lower = v6_fpr;
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  const auto index = gw.get("/pks/v2/index/six@example.org");
  INFO(index.body);
  REQUIRE(index.status == 200);
  CHECK_THAT(index.body, Contains("{\"version\":6,\"fingerprint\":\"" + lower + "\""));
  CHECK_THAT(index.body, Contains("\"name\":\"Ed25519\""));
  // Never on /pks/lookup: gpg would fail its whole import. The answer says where it is.
  for (const std::string& target :
       {get_target(v6_fpr), get_target(v6_fpr.substr(0, 16)),
        std::string("/pks/lookup?op=get&options=mr&exact=on&search=six%40example.org"),
        std::string("/pks/lookup?op=index&options=mr&exact=on&search=six%40example.org")}) {
    INFO(target);
    const auto r = gw.get(target);
    CHECK(r.status == 404);
    CHECK_THAT(r.body, Contains("v6 key") && Contains("/vks/v1/by-fingerprint/" + v6_fpr));
  }
  // The v4 key with RFC 9580's algorithms is served everywhere, HKP included.
  for (const std::string& target : {get_target(v4_fpr), "/vks/v1/by-fingerprint/" + v4_fpr,
                                    "/pks/v2/certs/by-vfingerprint/04" + v4_fpr}) {
    INFO(target);
    const auto r = gw.get(target);
    REQUIRE(r.status == 200);
    CHECK((r.body.starts_with("-----BEGIN") ? binary_of(r.body) : r.body) == binary_of(v4));
  }
  const auto listing = gw.get(index_target(v4_fpr));
  REQUIRE(listing.status == 200);
  CHECK_THAT(listing.body, Contains("pub:" + v4_fpr + ":27:255:"));
  CHECK_THAT(listing.body, Contains("uid:Proton%20User%20<proton@example.org>:"));
}

TEST_CASE("a v6 key is fetched from an upstream on a miss and its revocation reaches the cache",
          "[integration][modern]") {
  TempDir dir;
  const forge::Key primary = forge::make_key(6), sub = forge::make_key(6, 25);
  const forge::Key mlkem = forge::make_key(6, hkpgw::hkp::modern::kMlKem768X25519);
  const std::string cert = forge::certificate(primary, "Hexa <hexa@example.org>", sub) +
                           mlkem.packet(true) + forge::bind(primary, mlkem);
  const std::string fpr = primary.fingerprint_hex();
  write_file(dir / "hexa.asc", hkpgw::hkp::armor_public_keys(cert));
  TestKeyserver ks(dir, "ks", "server", "normal", {dir / "hexa.asc"});
  Gateway gw{GatewayConfig(dir).upstreams({{"ks", ks.url()}})};
  REQUIRE(gw.started());

  const auto first = gw.get("/vks/v1/by-fingerprint/" + fpr);
  INFO(first.body);
  REQUIRE(first.status == 200);
  CHECK(binary_of(first.body) == cert);
  CHECK(first.header("x-hkp-cache") == "miss");
  // Cached: by the ML-KEM subkey's fingerprint and key ID too, without the upstream.
  const int asked = ks.lookups();
  for (const std::string& target : {"/vks/v1/by-fingerprint/" + mlkem.fingerprint_hex(),
                                    "/vks/v1/by-keyid/" + mlkem.fingerprint_hex().substr(0, 16),
                                    "/pks/v2/certs/by-vfingerprint/06" + fpr}) {
    INFO(target);
    const auto r = gw.get(target);
    CHECK(r.status == 200);
    CHECK(r.header("x-hkp-cache") == "hit");
  }
  CHECK(ks.lookups() == asked);
  const auto js = openpgpjs_read(dir / "hexa-served.asc", first.body);
  INFO(js.err);
  // OpenPGP.js 6.3.2 has no ML-KEM: it reads the key (skipping what it does not know) or says
  // why not; it must never be a parse failure of what the gateway made.
  if (js.exit_code == 0) CHECK_THAT(js.out, Contains(fpr));

  // The owner revokes the key with a bare revocation, sent as gpg sends one.
  const auto revoked = post_add(
      gw,
      "keytext=" + percent_encode_all(hkpgw::hkp::armor_public_keys(forge::revoke_key(primary))));
  INFO(revoked.body);
  REQUIRE(revoked.status == 200);
  const auto after = gw.get("/vks/v1/by-fingerprint/" + fpr);
  REQUIRE(after.status == 200);
  const auto read = openpgpjs_read(dir / "hexa-revoked.asc", after.body);
  INFO(read.err);
  REQUIRE(read.exit_code == 0);
  CHECK_THAT(read.out, Contains("\"revoked\":true"));
}

TEST_CASE("gpg is never broken by v6 keys: a person's v4 key reaches it, the v6 one does not",
          "[integration][modern][gpg]") {
  TempDir dir;
  // Alice has her v4 key (from gpg) and a v6 key with the same address, and the upstream (as
  // Hockeypuck does) serves both for her address over HKP.
  const forge::Key primary = forge::make_key(6), sub = forge::make_key(6, 25);
  const std::string v6 = forge::certificate(primary, "Alice Example <alice@example.org>", sub);
  write_file(dir / "alice-v6.asc", hkpgw::hkp::armor_public_keys(v6));
  TestKeyserver ks(dir, "ks", "server", "normal", {"alice.asc", dir / "alice-v6.asc"});
  Gateway gw{GatewayConfig(dir).upstreams({{"ks", ks.url()}})};
  REQUIRE(gw.started());

  // What the upstream serves for her address, given to gpg 2.2 as it is: the whole import fails
  // on the v6 certificate, her v4 key included. The reason for the rule.
  write_file(dir / "both.asc",
             hkpgw::hkp::armor_public_keys(binary_of(read_file(data_dir() + "/alice.asc")) + v6));
  Gpg direct;
  const auto imported = direct({"--import", dir / "both.asc"});
  INFO(imported.err);
  CHECK(direct.fingerprints().empty());

  // Through the gateway: gpg --locate-keys finds her by address and imports her v4 key.
  Gpg gpg;
  const auto located = gpg(
      {"--auto-key-locate", "clear,keyserver", "--locate-keys", "alice@example.org"}, gw.hkp_url());
  INFO(located.err);
  CHECK(located.exit_code == 0);
  CHECK(gpg.fingerprints() == std::vector<std::string>{fixture("ALICE_FPR")});
  // The VKS front gives clients that read v6 both keys.
  const auto vks = gw.get("/vks/v1/by-email/alice%40example.org");
  REQUIRE(vks.status == 200);
  const auto fprs = openpgpjs_fingerprints(dir, "alice-both.asc", vks.body);
  CHECK(std::count(fprs.begin(), fprs.end(), primary.fingerprint_hex()) == 1);
  CHECK(std::count(fprs.begin(), fprs.end(), fixture("ALICE_FPR")) == 1);

  // gpg asking for the v6 key by its key ID gets "not found", not a broken keyring.
  Gpg other;
  const auto recv = other({"--recv-keys", primary.fingerprint_hex().substr(0, 16)}, gw.hkp_url());
  INFO(recv.err);
  CHECK(recv.exit_code != 0);
  CHECK_FALSE(Catch::Matchers::Contains("Invalid keyring").match(recv.err));
  // And the v4 key with RFC 9580's algorithms, next to a key gpg reads: gpg skips it cleanly.
  const std::string proton = openpgpjs_fixture("curve25519-v4.asc");
  REQUIRE(post_add(gw, "keytext=" + percent_encode_all(proton)).status == 200);
  Gpg third;
  const auto both =
      third({"--recv-keys", fixture("ALICE_FPR"), fingerprint_of(proton)}, gw.hkp_url());
  INFO(both.err);
  CHECK(third.fingerprints() == std::vector<std::string>{fixture("ALICE_FPR")});
}

TEST_CASE("keys OpenPGP.js makes now go through the gateway and come back as it made them",
          "[integration][modern][openpgpjs]") {
  // Fresh keys on every run (tests/js/make_keys.mjs: the library's default v4 key and a v6 key),
  // sent as HKP v2 clients send them, read back by OpenPGP.js from what the gateway serves.
  const auto made = openpgpjs_make_keys();
  INFO(made.run.err);
  REQUIRE_FALSE(made.v6.empty());
  const std::string& v4 = made.v4;
  const std::string& v6 = made.v6;

  TempDir dir;
  Gateway gw{GatewayConfig(dir)};
  REQUIRE(gw.started());
  for (const std::string& key : {v4, v6}) {
    const std::string fpr = fingerprint_of(key);
    INFO(fpr);
    const auto posted = http_request(gw.address(), "POST", "/pks/v2/certs", binary_of(key),
                                     {"Content-Type: application/pgp-keys;armor=no"});
    INFO(posted.body);
    REQUIRE(posted.status == 200);
    // The draft's answer: the certificate's version and its fingerprint in lower case.
    std::string lower = fpr;
    for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    CHECK_THAT(posted.body, Contains(std::string("{\"version\":") + (fpr.size() == 64 ? "6" : "4") +
                                     ",\"fingerprint\":\"" + lower + "\""));
    const auto served = gw.get("/vks/v1/by-fingerprint/" + fpr);
    REQUIRE(served.status == 200);
    CHECK(binary_of(served.body) == binary_of(key));
    CHECK(openpgpjs_fingerprints(dir, "fresh.asc", served.body) == std::vector<std::string>{fpr});
  }
}

TEST_CASE("an upstream's forged v6 copy reaches clients as its owner made it",
          "[integration][modern][forgery]") {
  TempDir dir;
  const forge::Key primary = forge::make_key(6), sub = forge::make_key(6, 25);
  const forge::Key stranger = forge::make_key(6);
  const std::string cert = forge::certificate(primary, "Victim <victim@example.org>", sub);
  write_file(dir / "victim.asc", hkpgw::hkp::armor_public_keys(cert));
  TestKeyserver ks(dir, "ks", "server", "normal", {dir / "victim.asc"});
  Gateway gw{GatewayConfig(dir).upstreams({{"ks", ks.url()}})};
  REQUIRE(gw.started());
  // The keyserver's copy gained what anyone can append: a user ID "certified" by a stranger in
  // the key's name, a stranger's subkey bound in its name, and a revocation in its name.
  forge::SigOptions in_its_name;
  in_its_name.claimed_issuer = &primary;
  const std::string attacker = "Attacker <attacker@example.org>";
  std::string tampered_binding = forge::bind(primary, stranger);
  tampered_binding[tampered_binding.size() - 70] ^= 0x01;  // in the salt
  const std::string forged = cert + forge::user_id_packet(attacker) +
                             forge::certify(primary, attacker, &stranger, in_its_name) +
                             stranger.packet(true) + tampered_binding + primary.packet() +
                             forge::revoke_key(primary, &stranger, in_its_name);
  REQUIRE(ks.serve_raw(forged));
  const auto r = gw.get("/vks/v1/by-fingerprint/" + primary.fingerprint_hex());
  INFO(r.body);
  REQUIRE(r.status == 200);
  CHECK(binary_of(r.body) == cert);
  // Nobody finds the victim's key by the attacker's address or the stranger's subkey.
  CHECK(gw.get("/vks/v1/by-email/attacker%40example.org").status == 404);
  CHECK(gw.get("/vks/v1/by-fingerprint/" + stranger.fingerprint_hex()).status == 404);
  const auto js = openpgpjs_read(dir / "victim-served.asc", r.body);
  INFO(js.err);
  REQUIRE(js.exit_code == 0);
  CHECK_THAT(js.out, Contains("\"revoked\":false"));
}
