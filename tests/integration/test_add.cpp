// Key submission through the gateway as gpg, sq and GpgFrontend do it, against real-HTTPS test
// keyservers: accepted and cached, forwarded (or kept for later), refused with a reason.
#include <catch2/catch.hpp>

#include <sstream>
#include <thread>

#include "hkp/keyring.hpp"
#include "hkp/packets.hpp"
#include "support/actors.hpp"
#include "support/forge.hpp"

using namespace hkpgw;
using namespace hkpgw::test;
using Catch::Matchers::Contains;

namespace {

// Escapes the way each client does (docs/clients.md).
std::string gpg_style(const std::string& s) { return percent_encode_all(s); }
std::string sq_style(const std::string& s) {  // '=' and '&' raw; controls, space, -, +, / escaped
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (c < 0x21 || c == '-' || c == '+' || c == '/' || c == '"' || c == '#' || c == '<' ||
        c == '>' || c == '`' || c == '?' || c == '{' || c == '}' || c == '%') {
      out += {'%', hex[c >> 4], hex[c & 15]};
    } else {
      out.push_back(static_cast<char>(c));
    }
  }
  return out;
}
std::string gpgfrontend_style(const std::string& s) {  // space as '+', a few chars escaped
  std::string out;
  for (char c : s) {
    switch (c) {
      case '\n': out += "%0A"; break;
      case '\r': out += "%0D"; break;
      case '(': out += "%28"; break;
      case ')': out += "%29"; break;
      case '/': out += "%2F"; break;
      case ':': out += "%3A"; break;
      case '+': out += "%2B"; break;
      case '=': out += "%3D"; break;
      case ' ': out += "+"; break;
      default: out.push_back(c);
    }
  }
  return out;
}



}  // namespace

TEST_CASE("gpg --send-keys through the gateway, then the owner's new subkey and revoked user ID",
          "[integration][add]") {
  TempDir dir;
  TestKeyserver ks(dir, "ks", "server", "normal", {"bob.asc"});  // does not know alice yet
  Gateway gw{GatewayConfig(dir).upstreams({{"ks", ks.url()}})};
  REQUIRE(gw.started());
  const std::string alice = fixture("ALICE_FPR");

  Gpg owner;
  REQUIRE(owner({"--import", data_dir() + "/alice-secret.asc"}).exit_code == 0);
  const auto sent = owner({"--send-keys", alice}, gw.hkp_url());
  REQUIRE(sent.exit_code == 0);
  CHECK(ks.count("adds") == 1);  // forwarded to the default upstream
  CHECK_THAT(gw.log(), Contains("event=key_added"));
  CHECK_THAT(gw.log(), Contains("status=added forwarded=ks"));

  Gpg reader;  // a fresh home gets it from the gateway's cache, not from upstream
  REQUIRE(reader({"--recv-keys", alice}, gw.hkp_url()).exit_code == 0);
  CHECK(reader.fingerprints() == std::vector<std::string>{alice});
  CHECK(ks.count("gets") == 0);

  // The owner adds an encryption subkey and revokes the work user ID, and sends again.
  REQUIRE(owner({"--pinentry-mode", "loopback", "--passphrase", "", "--quick-add-key", alice,
                 "cv25519", "encr", "1y"})
              .exit_code == 0);
  REQUIRE(owner({"--pinentry-mode", "loopback", "--passphrase", "", "--quick-revoke-uid", alice,
                 "Alice Work: Ops <Alice@Work.Example>"})
              .exit_code == 0);
  REQUIRE(owner({"--send-keys", alice}, gw.hkp_url()).exit_code == 0);
  CHECK_THAT(gw.log(), Contains("status=updated forwarded=ks"));
  CHECK(ks.count("adds") == 2);

  Gpg elsewhere;  // someone who had the old copy refreshes
  REQUIRE(elsewhere({"--import", data_dir() + "/alice.asc"}).exit_code == 0);
  REQUIRE(elsewhere({"--refresh-keys", alice}, gw.hkp_url()).exit_code == 0);
  const auto listing = elsewhere({"--with-colons", "--list-keys", alice}).out;
  std::size_t subs = 0;
  for (auto at = listing.find("\nsub:"); at != std::string::npos; at = listing.find("\nsub:", at + 1)) ++subs;
  CHECK(subs == 2);
  CHECK_THAT(listing, Contains("uid:r::::"));  // the revoked user ID shows as revoked
}

TEST_CASE("each client's form escaping is understood", "[integration][add]") {
  TempDir dir;
  Gateway gw{GatewayConfig(dir).upstreams_table("forward_adds = \"none\"\n")};
  REQUIRE(gw.started());
  const std::string armored = read_file(data_dir() + "/erin.asc");
  auto style = GENERATE(as<std::string>{}, "gpg", "sq", "gpgfrontend", "raw");
  HttpResult r;
  if (style == "gpg") r = post_add(gw, "keytext=" + gpg_style(armored));
  if (style == "sq") r = post_add(gw, "keytext=" + sq_style(armored));
  if (style == "gpgfrontend") r = post_add(gw, "keytext=" + gpgfrontend_style(armored));
  if (style == "raw") r = post_add(gw, armored, "application/pgp-keys");
  INFO(style << ": " << r.body);
  CHECK(r.status == 200);
  CHECK(r.body == fixture("ERIN_FPR") + ": added; kept here only\n");
  CHECK(gw.get("/pks/lookup?op=get&search=0x" + fixture("ERIN_FPR")).header("x-hkp-cache") == "hit");
}

TEST_CASE("several keys in one submission, and the machine-readable summary", "[integration][add]") {
  TempDir dir;
  Gateway gw{GatewayConfig(dir).upstreams_table("forward_adds = \"none\"\n")};
  REQUIRE(gw.started());
  const std::string body = "keytext=" + gpg_style(read_file(data_dir() + "/team.asc")) + "&options=mr";
  const HttpResult r = post_add(gw, body);
  CHECK(r.status == 200);
  CHECK_THAT(r.body, Contains("info:1:2\n"));
  CHECK_THAT(r.body, Contains("key:" + fixture("TEAM1_FPR") + ":added::\n"));
  CHECK_THAT(r.body, Contains("key:" + fixture("TEAM2_FPR") + ":added::\n"));
  const HttpResult again = post_add(gw, body);
  CHECK_THAT(again.body, Contains("key:" + fixture("TEAM1_FPR") + ":unchanged::\n"));
}

TEST_CASE("refusals: secret keys, garbage, oversize, unknown content type", "[integration][add]") {
  TempDir dir;
  TestKeyserver ks(dir, "ks");
  Gateway gw{GatewayConfig(dir).upstreams({{"ks", ks.url()}})};
  REQUIRE(gw.started());
  SECTION("a secret key: 422, nothing stored, nothing forwarded") {
    const HttpResult r = post_add(gw, "keytext=" + gpg_style(read_file(data_dir() + "/alice-secret.asc")));
    CHECK(r.status == 422);
    CHECK_THAT(r.body, Contains("secret key material is never accepted"));
    CHECK(r.body.find('\n') == r.body.size() - 1);
    CHECK(cached_keys(gw) == 0);
    CHECK(ks.count("adds") == 0);
    CHECK(ks.count("lookups") == 0);  // it saw nothing but probes (one /stats snapshot each:
    CHECK(ks.count("gets") == 0);     // comparing requests with probes raced a probe)
  }
  SECTION("garbage: 400") {
    const HttpResult r = post_add(gw, "keytext=hello%20world");
    CHECK(r.status == 400);
    CHECK_THAT(r.body, Contains("not OpenPGP: keytext holds no public key and no revocation certificate"));
    CHECK(post_add(gw, "other=1").status == 400);
    // OpenPGP, but only a user ID packet: not "not OpenPGP".
    const HttpResult uid = post_add(gw, "keytext=" + gpg_style(hkp::armor_public_keys(
                                       hkp::make_packet(hkp::tag::user_id, "x <x@example.org>"))));
    CHECK(uid.status == 400);
    CHECK_THAT(uid.body, Contains("keytext holds OpenPGP packets, but no public key"));
  }
  SECTION("2 MiB: 413 before the body is read") {
    const HttpResult r = post_add(gw, "keytext=" + std::string(2 << 20, 'A'));
    CHECK(r.status == 413);
    CHECK_THAT(r.body, Contains("Request body too large"));
  }
  SECTION("more than 100 keys in one submission: 413, nothing stored") {
    const auto r0 = run({HKPGW_KEYGEN, "101", dir / "many.asc"});
    REQUIRE(r0.exit_code == 0);
    const HttpResult r = post_add(gw, read_file(dir / "many.asc"), "application/pgp-keys");
    CHECK(r.status == 413);
    CHECK_THAT(r.body, Contains("at least 101 keys in one submission; at most 100"));
    CHECK(cached_keys(gw) == 0);
  }
  SECTION("an unknown content type: 415") {
    const HttpResult r = post_add(gw, "keytext=x", "text/xml");
    CHECK(r.status == 415);
    CHECK_THAT(r.body, Contains("unsupported content type \"text/xml\""));
  }
  SECTION("a multipart form that is no form: 400 saying why") {
    const HttpResult r = post_add(gw, "keytext=x", "multipart/form-data; boundary=x");
    CHECK(r.status == 400);
    CHECK_THAT(r.body, Contains("multipart body without its boundary"));
  }
  SECTION("a subkey without its primary key: 422 naming the subkey") {
    const std::string key = key_packets(read_file(data_dir() + "/alice.asc"));
    std::string sub;
    const auto packets = hkp::split_packets(key);  // named: *temporary in a range-for dangles
    REQUIRE(packets);
    for (const auto& p : *packets) {
      if (p.tag == hkp::tag::public_subkey || (!sub.empty() && p.tag == hkp::tag::signature)) {
        sub += p.whole;
      }
    }
    const HttpResult r = post_add(gw, "keytext=" + gpg_style(hkp::armor_public_keys(sub)));
    CHECK(r.status == 422);
    CHECK_THAT(r.body, Contains("key " + fixture("ALICE_SUB_FPR") + ": subkey without its primary key"));
    CHECK(cached_keys(gw) == 0);
  }
  SECTION("a key with no valid self-signature: 422") {
    const std::string broken =
        without_valid_self_signature(key_packets(read_file(data_dir() + "/alice.asc")));
    const HttpResult r = post_add(gw, "keytext=" + gpg_style(hkp::armor_public_keys(broken)));
    CHECK(r.status == 422);
    CHECK_THAT(r.body, Contains("the primary key has no valid self-signature"));
  }
  CHECK(gw.get("/").status == 200);  // still serving
}

TEST_CASE("forward_adds: a default that is down gets the key once it is back",
          "[integration][add]") {
  TempDir dir;
  TestKeyserver ks(dir, "ks", "server", "fail");
  Gateway gw{GatewayConfig(dir)
                 .upstreams({{"ks", ks.url()}})
                 .upstreams_table("probe_interval = \"1h\"\n")};
  REQUIRE(gw.started());
  const HttpResult r = post_add(gw, "keytext=" + gpg_style(read_file(data_dir() + "/dave.asc")));
  CHECK(r.status == 200);
  CHECK_THAT(r.body, Contains(": added; queued for ks (upstream unavailable, retried)"));
  CHECK(cached_keys(gw) == 1);
  CHECK_THAT(gw.get("/pks/lookup?op=stats&options=mr").body, Contains("\"forward_queue\":1"));
  CHECK(ks.count("adds") == 0);
  ks.set_mode("normal");
  CHECK(eventually([&] { return ks.count("adds") == 1; }));
  CHECK(eventually([&] { return gw.log().find("event=key_forwarded upstream=ks") != std::string::npos; }));
  CHECK(eventually([&] {
    return gw.get("/pks/lookup?op=stats&options=mr").body.find("\"forward_queue\":0") != std::string::npos;
  }));
}

TEST_CASE("the forward queue survives a restart", "[integration][add]") {
  TempDir dir;
  TestKeyserver ks(dir, "ks", "server", "fail");
  {
    Gateway gw{GatewayConfig(dir)
                   .upstreams({{"ks", ks.url()}})
                   .upstreams_table("probe_interval = \"1h\"\n")};
    REQUIRE(gw.started());
    REQUIRE(post_add(gw, "keytext=" + gpg_style(read_file(data_dir() + "/dave.asc"))).status == 200);
  }
  ks.set_mode("normal");
  Gateway gw{GatewayConfig(dir)
                 .upstreams({{"ks", ks.url()}})
                 .upstreams_table("probe_interval = \"1h\"\n")};
  REQUIRE(gw.started());
  CHECK(eventually([&] { return ks.count("adds") == 1; }));
}

TEST_CASE("forward_adds = all and none", "[integration][add]") {
  TempDir dir;
  TestKeyserver a(dir, "a");
  TestKeyserver b(dir, "b");
  const std::string body = "keytext=" + gpg_style(read_file(data_dir() + "/erin.asc"));
  SECTION("all: every upstream gets it") {
    Gateway gw{GatewayConfig(dir)
                   .upstreams({{"a", a.url()}, {"b", b.url()}})
                   .upstreams_table("forward_adds = \"all\"\n")};
    REQUIRE(gw.started());
    const HttpResult r = post_add(gw, body);
    CHECK(r.status == 200);
    CHECK_THAT(r.body, Contains("forwarded to a,b"));
    CHECK(a.count("adds") == 1);
    CHECK(b.count("adds") == 1);
  }
  SECTION("none: kept here only") {
    Gateway gw{GatewayConfig(dir)
                   .upstreams({{"a", a.url()}, {"b", b.url()}})
                   .upstreams_table("forward_adds = \"none\"\n")};
    REQUIRE(gw.started());
    CHECK(post_add(gw, body).body == fixture("ERIN_FPR") + ": added; kept here only\n");
    CHECK(a.count("adds") + b.count("adds") == 0);
  }
  SECTION("default, while the default is down: the next upstream takes it") {
    a.set_mode("fail");
    Gateway gw{GatewayConfig(dir)
                   .upstreams({{"a", a.url()}, {"b", b.url()}})
                   .upstreams_table("probe_interval = \"1h\"\n")};
    REQUIRE(gw.started());
    const HttpResult r = post_add(gw, body);
    CHECK(r.status == 200);
    CHECK_THAT(r.body, Contains("forwarded to b"));
    CHECK(b.count("adds") == 1);
    CHECK_THAT(gw.get("/pks/lookup?op=stats&options=mr").body, Contains("\"forward_queue\":0"));
  }
  SECTION("a binary body (application/octet-stream) is a submission too") {
    Gateway gw{GatewayConfig(dir)
                   .upstreams({{"a", a.url()}})
                   .upstreams_table("forward_adds = \"none\"\n")};
    REQUIRE(gw.started());
    const HttpResult r = post_add(gw, key_packets(read_file(data_dir() + "/erin.asc")), "application/octet-stream");
    CHECK(r.status == 200);
    CHECK(r.body == fixture("ERIN_FPR") + ": added; kept here only\n");
  }
  SECTION("default: the default only") {
    Gateway gw{GatewayConfig(dir)
                   .upstreams({{"a", a.url()}, {"b", b.url()}})
                   .upstreams_table("default = \"b\"\n")};
    REQUIRE(gw.started());
    CHECK_THAT(post_add(gw, body).body, Contains("forwarded to b"));
    CHECK(a.count("adds") == 0);
    CHECK(b.count("adds") == 1);
  }
}

TEST_CASE("a bare revocation certificate for a cached key revokes it", "[integration][add]") {
  TempDir dir;
  TestKeyserver ks(dir, "ks", "server", "normal", {"carol-unrevoked.asc"});
  Gateway gw{GatewayConfig(dir)
                 .upstreams({{"ks", ks.url()}})
                 .upstreams_table("forward_adds = \"none\"\n")};
  REQUIRE(gw.started());
  const std::string index = "/pks/lookup?op=index&options=mr&search=0x" + fixture("CAROL_FPR");
  REQUIRE(gw.get(index).status == 200);  // cached, not revoked
  CHECK(gw.get(index).body.find(":r\n") == std::string::npos);
  // Served twice: the second answer comes from the armored-answer cache.
  const std::string before = gw.get(get_target(fixture("CAROL_FPR"))).body;
  REQUIRE(gw.get(get_target(fixture("CAROL_FPR"))).body == before);
  const std::string rev = read_file(data_dir() + "/carol-revocation.asc");
  const HttpResult r = post_add(gw, "keytext=" + gpg_style(rev));
  CHECK(r.status == 200);
  CHECK(r.body == fixture("CAROL_FPR") + ": updated; kept here only\n");
  CHECK_THAT(gw.get(index).body, Contains(":r\n"));
  // The armored key carries the revocation at once: no cached armor of the old copy is served.
  const std::string after = gw.get(get_target(fixture("CAROL_FPR"))).body;
  CHECK(after != before);
  CHECK(after.size() > before.size());
  // For a key the gateway does not hold, it says so.
  TempDir other;
  Gateway empty{GatewayConfig(other).upstreams_table("forward_adds = \"none\"\n")};
  REQUIRE(empty.started());
  const HttpResult unknown = post_add(empty, "keytext=" + gpg_style(rev));
  CHECK(unknown.status == 422);
  CHECK_THAT(unknown.body, Contains("which neither this gateway nor its upstreams have"));
}

TEST_CASE("a bare revocation for a key not cached yet revokes the key its upstream has",
          "[integration][add]") {
  // Behind a balancer the replica a revocation lands on may never have been asked for the key:
  // it fetches the key as a lookup would, applies the revocation and forwards the revoked key.
  TempDir dir;
  TestKeyserver ks(dir, "ks", "server", "normal", {"carol-unrevoked.asc"});
  Gateway gw{GatewayConfig(dir).upstreams({{"ks", ks.url()}})};
  REQUIRE(gw.started());
  const std::string carol = fixture("CAROL_FPR");
  const std::string rev = read_file(data_dir() + "/carol-revocation.asc");
  const HttpResult r = post_add(gw, "keytext=" + gpg_style(rev));
  CHECK(r.status == 200);
  CHECK(r.body == carol + ": updated; forwarded to ks\n");
  CHECK(ks.count("gets") == 1);
  CHECK(ks.count("adds") == 1);
  CHECK_THAT(gw.get(index_target(carol)).body, Contains(":r\n"));
  CHECK(ks.count("gets") == 1);  // served from the cache, revoked
  // A revocation whose key nobody has is still refused, after one question upstream.
  TempDir other;
  TestKeyserver none(other, "none", "server", "normal", {"alice.asc"});
  Gateway gw2{GatewayConfig(other).upstreams({{"none", none.url()}})};
  REQUIRE(gw2.started());
  const HttpResult refused = post_add(gw2, "keytext=" + gpg_style(rev));
  CHECK(refused.status == 422);
  CHECK_THAT(refused.body, Contains("which neither this gateway nor its upstreams have"));
  CHECK(none.count("gets") == 1);
  CHECK(none.count("adds") == 0);
}

TEST_CASE("sq publishes and fetches through the gateway", "[integration][add]") {
  TempDir dir;
  TestKeyserver ks(dir, "ks", "server", "normal", {"bob.asc"});
  Gateway gw{GatewayConfig(dir).upstreams({{"ks", ks.url()}})};
  REQUIRE(gw.started());
  const std::string server = "hkp://" + gw.address();
  const auto sent = run({"sq", "keyserver", "--policy", "insecure", "--server", server, "send",
                         data_dir() + "/erin.asc"},
                        {{"HOME", dir.path()}});
  INFO(sent.err);
  REQUIRE(sent.exit_code == 0);
  CHECK(ks.count("adds") == 1);
  const auto got = run({"sq", "keyserver", "--policy", "insecure", "--server", server, "get",
                        fixture("ERIN_FPR")},
                       {{"HOME", dir.path()}});
  INFO(got.err);
  CHECK(got.exit_code == 0);
  CHECK_THAT(got.out, Contains("BEGIN PGP PUBLIC KEY BLOCK"));
}

TEST_CASE("a flooded submission is cleaned before it is cached or forwarded, and counted",
          "[integration][add]") {
  TempDir dir;
  TestKeyserver ks(dir, "ks", "server", "normal", {"bob.asc"});
  Gateway gw{GatewayConfig(dir).upstreams({{"ks", ks.url()}})};
  REQUIRE(gw.started());
  const std::string flood = flooded(key_packets(read_file(data_dir() + "/alice.asc")), 2000);
  const HttpResult r = post_add(gw, "keytext=" + gpg_style(hkp::armor_public_keys(flood)));
  CHECK(r.status == 200);
  CHECK_THAT(r.body, Contains(fixture("ALICE_FPR") + ": added; forwarded to ks"));
  CHECK_THAT(gw.get("/pks/lookup?op=stats&options=mr").body,
             Contains("\"keys_dropped\":{\"third_party_signature\":2000}"));
  CHECK_THAT(gw.log(), Contains("event=keys_cleaned upstream=upload dropped=third_party_signature:2000"));
  const std::string served = gw.get("/pks/lookup?op=get&search=0x" + fixture("ALICE_FPR")).body;
  CHECK(served.size() < 2000);  // armored self-signed key, no flood
}

TEST_CASE("what RNP prints about a broken key becomes a log line and not a stray one",
          "[integration][add]") {
  TempDir dir;
  Gateway gw{GatewayConfig(dir).upstreams_table("forward_adds = \"none\"\n")};
  REQUIRE(gw.started());
  // A forged self-signature with a right hash prefix: RNP has to verify it, and says why not.
  const std::string pub = key_packets(read_file(data_dir() + "/alice.asc"));
  const std::string uid = "Eve <boss@alice.example>";
  const std::string forged = with_after_first_uid(
      pub, hkp::make_packet(13, uid) + forged_signature_on(pub, uid, 0x13, 1700000000u));
  const HttpResult r = post_add(gw, "keytext=" + gpg_style(hkp::armor_public_keys(forged)));
  CHECK(r.status == 200);  // accepted without the forged user ID
  CHECK(gw.get("/pks/lookup?op=get&search=boss%40alice.example").status == 404);
  const std::string log = gw.log();
  CHECK_THAT(log, Contains("event=library_message text="));
  std::istringstream in(log);
  for (std::string line; std::getline(in, line);) {
    INFO(line);
    CHECK(line.starts_with("ts="));
  }
}
