// The HKP v2 front (draft-ietf-openpgp-hkp) through the real binary, against a real-HTTPS test
// keyserver: binary bundles by versioned fingerprint, key ID and address (both path shapes the
// implementations use), the JSON listing, feature detection, HEAD, the submission path, and
// the precise answers to every malformed shape.
#include <boost/json.hpp>
#include <catch2/catch.hpp>
#include <regex>

#include "support/actors.hpp"

using namespace hkpgw;
using namespace hkpgw::test;
using Catch::Matchers::Contains;
using Catch::Matchers::StartsWith;

namespace {

constexpr const char* kBinaryType = "application/pgp-keys;armor=no";

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// The binary form of an armored key, as gpg makes it.
std::string dearmored(const TempDir& dir, const std::string& armored) {
  const std::string in = dir / "to-dearmor.asc", out = dir / "dearmored.gpg";
  write_file(in, armored);
  std::remove(out.c_str());
  REQUIRE(run({"gpg", "--batch", "--yes", "--output", out, "--dearmor", in}).exit_code == 0);
  return read_file(out);
}

}  // namespace

TEST_CASE("v2 lookups answer the binary bundle, from the upstream and then from the cache",
          "[integration][v2]") {
  TempDir dir;
  TestKeyserver ks(dir, "ks", "server", "normal", {"alice.asc", "bob.asc"});
  Gateway gw{GatewayConfig(dir).upstreams({{"ks", ks.url()}})};
  REQUIRE(gw.started());
  const std::string alice = fixture("ALICE_FPR");

  const HttpResult first = gw.get("/pks/v2/certs/by-vfingerprint/04" + lower(alice));
  INFO(first.body.substr(0, 200));
  REQUIRE(first.status == 200);
  CHECK(first.header("content-type") == kBinaryType);
  CHECK(first.header("access-control-allow-origin") == "*");
  CHECK(first.header("x-hkp-cache") == "miss");
  CHECK(first.body.find("-----BEGIN PGP") == std::string::npos);
  CHECK(ks.count("gets") == 1);

  // The same packets the HKP front armors: one cache, one key, two encodings.
  const HttpResult hkp = gw.get(get_target(alice));
  REQUIRE(hkp.status == 200);
  CHECK(first.body == dearmored(dir, hkp.body));

  // Every v2 way to name alice is answered from the cache, byte for byte the same.
  const std::vector<std::string> targets = {
      "/pks/v2/certs/by-vfingerprint/04" + alice,          // upper case hex
      "/pks/v2/certs/by-vfingerprint/4/" + alice,          // Hockeypuck's two components
      "/pks/v2/certs/by-vfingerprint/04/" + lower(alice),
      "/pks/v2/certs/by-keyid/" + alice.substr(24),
      "/pks/v2/certs/by-keyid/" + lower(fixture("ALICE_SUB_FPR").substr(24)),  // a subkey's
      "/pks/v2/certs/by-identity/alice@example.org",
      "/pks/v2/certs/by-identity/%3CAlice%40Example.ORG%3E",  // <address>, any case
  };
  for (const auto& t : targets) {
    const HttpResult r = gw.get(t);
    INFO(t << " -> " << r.status << " " << r.body.substr(0, 120));
    CHECK(r.status == 200);
    CHECK(r.header("content-type") == kBinaryType);
    CHECK(r.body == first.body);
  }
  CHECK(ks.count("gets") == 2);  // the address asked once: other keys may carry it

  // HEAD: GET's status and headers, no body.
  const HttpResult head = http_request(gw.address(), "HEAD", targets[0]);
  CHECK(head.status == 200);
  CHECK(head.header("content-type") == kBinaryType);
  CHECK(head.header("access-control-allow-origin") == "*");
  CHECK(head.body.empty());

  // Real gpg imports the binary bundle.
  Gpg reader;
  const std::string file = dir / "v2.gpg";
  write_file(file, first.body);
  REQUIRE(reader({"--import", file}).exit_code == 0);
  CHECK(reader.fingerprints() == std::vector<std::string>{alice});

  // Not found anywhere: 404, one line.
  const HttpResult missing = gw.get("/pks/v2/certs/by-vfingerprint/04" + fixture("CAROL_FPR"));
  CHECK(missing.status == 404);
  CHECK(std::count(missing.body.begin(), missing.body.end(), '\n') == 1);

  // The front is a label of its own.
  const std::string m = http_get(gw.admin(), "/metrics").body;
  CHECK_THAT(m, Contains("hkp_gateway_requests_total{front=\"v2\",op=\"get\",status=\"200\"} 9"));
  CHECK_THAT(m, Contains("hkp_gateway_requests_total{front=\"v2\",op=\"get\",status=\"404\"} 1"));
  CHECK(gw.process().wait_for("front=v2 op=get"));

  // Through one upstream's route, as a client's server list offers it.
  const HttpResult routed = gw.get("/u/ks/pks/v2/certs/by-keyid/" + fixture("BOB_FPR").substr(24));
  CHECK(routed.status == 200);
  CHECK(routed.header("content-type") == kBinaryType);
  CHECK(ks.count("gets") == 4);  // after carol's miss and bob's
  CHECK(gw.get("/u/nosuch/pks/v2/certs/by-keyid/" + alice.substr(24)).status == 404);
}

TEST_CASE("the v2 index is JSON with the draft's fields", "[integration][v2]") {
  TempDir dir;
  TestKeyserver ks(dir, "ks", "server", "normal", {"alice.asc", "bob.asc"});
  Gateway gw{GatewayConfig(dir).upstreams({{"ks", ks.url()}})};
  REQUIRE(gw.started());
  const std::string alice = fixture("ALICE_FPR");
  REQUIRE(gw.get(get_target(alice)).status == 200);  // cached with all its facts

  for (const std::string& id : {std::string("alice@example.org"), "04" + alice, alice.substr(24)}) {
    const HttpResult r = gw.get("/pks/v2/index/" + id);
    INFO(id << " -> " << r.body);
    REQUIRE(r.status == 200);
    CHECK(r.header("content-type") == "application/json");
    CHECK(r.header("access-control-allow-origin") == "*");
    boost::system::error_code ec;
    const boost::json::value doc = boost::json::parse(r.body, ec);
    REQUIRE_FALSE(ec);
    REQUIRE(doc.is_array());
    REQUIRE(doc.get_array().size() == 1);
    const boost::json::object& cert = doc.get_array()[0].get_object();
    CHECK(cert.at("version").as_int64() == 4);
    CHECK(cert.at("fingerprint").as_string() == lower(alice));
    CHECK(cert.at("algorithm").at("code").as_int64() == 22);  // EdDSA (legacy encoding)
    CHECK(cert.at("isRevoked").as_bool() == false);
    const std::string created(cert.at("creation").as_string());
    CHECK(created.size() == 20);
    CHECK(created.back() == 'Z');
    CHECK(created[10] == 'T');
    std::vector<std::string> uids;
    for (const auto& u : cert.at("userIDs").as_array()) {
      uids.emplace_back(u.at("uidString").as_string());
    }
    std::sort(uids.begin(), uids.end());
    CHECK(uids == std::vector<std::string>{"Alice Example <alice@example.org>",
                                           "Alice Work: Ops <Alice@Work.Example>"});
    REQUIRE(cert.at("subkeys").as_array().size() == 1);
    CHECK(cert.at("subkeys").as_array()[0].at("fingerprint").as_string() ==
          lower(fixture("ALICE_SUB_FPR")));
  }
  // Bob comes from the upstream's listing on a miss, still as JSON.
  const HttpResult bob = gw.get("/pks/v2/index/bob%2Bkeys%40example.org");
  INFO(bob.body);
  REQUIRE(bob.status == 200);
  CHECK_THAT(bob.body, Contains("\"fingerprint\":\"" + lower(fixture("BOB_FPR")) + "\""));
  CHECK(gw.get("/pks/v2/index/nobody@example.org").status == 404);
}

TEST_CASE("a key's algorithm and size and its subkeys read the same on every listing",
          "[integration][v2]") {
  TempDir dir;
  TestKeyserver ks(dir, "ks", "server", "normal", {"alice.asc"});
  Gateway gw{GatewayConfig(dir).upstreams({{"ks", ks.url()}})};
  REQUIRE(gw.started());
  const std::string alice = fixture("ALICE_FPR"), sub = fixture("ALICE_SUB_FPR");
  REQUIRE(gw.get(get_target(alice)).status == 200);
  // Alice: a v4 EdDSA (Ed25519) primary key with a Curve25519 ECDH subkey: 255 bits each, as
  // gpg says (gpg --list-keys: ed25519, cv25519), on every page.
  const HttpResult mr = gw.get(index_target(alice));
  CHECK_THAT(pub_line(mr), StartsWith("pub:" + alice + ":22:255:"));
  const HttpResult index = gw.get("/pks/lookup?op=index&search=0x" + alice);
  CHECK_THAT(index.body, Contains("pub  EdDSA255/"));
  const HttpResult vindex = gw.get("/pks/lookup?op=vindex&search=0x" + alice);
  INFO(vindex.body);
  CHECK_THAT(vindex.body, Contains("pub  EdDSA255/"));
  // The subkey line as the pub line: algorithm and size, fingerprint, created, expiry.
  const std::regex sub_line("sub  ECDH255/" + sub +
                            " \\d{4}-\\d{2}-\\d{2}( \\[expires: [0-9-]+\\])?\n");
  CHECK(std::regex_search(vindex.body, sub_line));
  const HttpResult v2 = gw.get("/pks/v2/index/04" + alice);
  INFO(v2.body);
  boost::system::error_code ec;
  const boost::json::value doc = boost::json::parse(v2.body, ec);
  REQUIRE_FALSE(ec);
  const auto& cert = doc.at(0);
  CHECK(cert.at("algorithm").at("bitLength").as_int64() == 255);
  const auto& subkey = cert.at("subkeys").at(0);
  CHECK(subkey.at("fingerprint").as_string() == lower(sub));
  CHECK(subkey.at("algorithm").at("code").as_int64() == 18);
  CHECK(subkey.at("algorithm").at("bitLength").as_int64() == 255);
  CHECK(subkey.at("creation").as_string() == cert.at("creation").as_string());
  CHECK(subkey.at("isRevoked").as_bool() == false);
}

TEST_CASE("v2 feature detection and malformed v2 requests get precise answers",
          "[integration][v2]") {
  TempDir dir;
  Gateway gw{GatewayConfig(dir).upstreams_table("forward_adds = \"none\"\n")};
  REQUIRE(gw.started());
  for (const std::string category :
       {"certs/by-vfingerprint", "certs/by-keyid", "certs/by-identity", "index"}) {
    const HttpResult r = http_request(gw.address(), "OPTIONS", "/pks/v2/" + category);
    INFO(category);
    CHECK(r.status == 200);
    CHECK(r.header("allow") == "GET, HEAD, OPTIONS");
    CHECK(r.header("access-control-allow-origin") == "*");
  }
  const HttpResult certs = http_request(gw.address(), "OPTIONS", "/pks/v2/certs");
  CHECK(certs.status == 200);
  CHECK(certs.header("allow") == "POST, OPTIONS");
  CHECK(certs.header("accept") == kBinaryType);
  for (const std::string unserved : {"prefixlog", "canonical", "not-a-category"}) {
    const HttpResult r = http_request(gw.address(), "OPTIONS", "/pks/v2/" + unserved);
    INFO(unserved);
    CHECK(r.status == 501);
    CHECK(r.header("access-control-allow-origin") == "*");
  }

  struct Case {
    std::string target;
    int status;
    std::string says;
  };
  const std::string fpr = fixture("ALICE_FPR");
  const std::vector<Case> cases = {
      {"/pks/v2/certs/by-vfingerprint", 403, "/pks/v2/certs/by-vfingerprint/<identifier>"},
      {"/pks/v2/certs/by-keyid/", 403, "<identifier>"},
      {"/pks/v2/index", 403, "<identifier>"},
      {"/pks/v2/certs/by-vfingerprint/" + fpr, 404, "not a v4 or v6 versioned fingerprint"},
      {"/pks/v2/certs/by-vfingerprint/0x04" + fpr, 404, "not a versioned fingerprint"},
      {"/pks/v2/certs/by-vfingerprint/06" + fpr, 404, "not a v4 or v6 versioned fingerprint"},
      {"/pks/v2/certs/by-vfingerprint/05" + std::string(64, 'a'), 404, "v5 (LibrePGP)"},
      {"/pks/v2/certs/by-keyid/0x" + fpr.substr(24), 404, "16 hex digits without 0x"},
      {"/pks/v2/certs/by-keyid/" + fpr, 404, "not a key ID"},
      {"/pks/v2/certs/by-identity/Alice%20Example", 501, "by address only"},
      {"/pks/v2/certs/by-identity/@example.org", 404, "not an email address"},
      {"/pks/v2/certs/by-fingerprint/" + fpr, 501, "category not served"},
      {"/pks/v2/prefixlog/2026-01-01", 501, "category not served"},
      {"/pks/v2/canonical/alice@example.org", 501, "category not served"},
      // Hostile shapes: an encoded line break (still one line), and a giant identifier (cut).
      {"/pks/v2/certs/by-identity/evil%0AX-Injected:%201@b.example", 501, "by address only"},
      {"/pks/v2/certs/by-vfingerprint/" + std::string(6000, 'A'), 404, "not a v4"},
  };
  for (const auto& c : cases) {
    const HttpResult r = gw.get(c.target);
    INFO(c.target.substr(0, 100) << " -> " << r.status << " " << r.body);
    CHECK(r.status == c.status);
    CHECK_THAT(r.body, Contains(c.says));
    CHECK(std::count(r.body.begin(), r.body.end(), '\n') == 1);
    CHECK(r.body.size() < 400);
    CHECK(r.header("x-injected").empty());
    CHECK(r.header("access-control-allow-origin") == "*");
  }
  CHECK(http_request(gw.address(), "POST", "/pks/v2/index/a@b.example").status == 405);
  CHECK(gw.get("/").status == 200);  // still serving
}

TEST_CASE("POST /pks/v2/certs takes binary bundles and curl's multipart keytext",
          "[integration][v2]") {
  TempDir dir;
  TestKeyserver ks(dir, "ks", "server", "normal", {});
  Gateway gw{GatewayConfig(dir).upstreams({{"ks", ks.url()}})};
  REQUIRE(gw.started());
  const std::string alice = fixture("ALICE_FPR");
  const std::string binary = dearmored(dir, read_file(data_dir() + "/alice.asc"));

  const auto post = [&](const std::string& body) {
    return http_request(gw.address(), "POST", "/pks/v2/certs", body,
                        {std::string("Content-Type: ") + kBinaryType});
  };
  const HttpResult added = post(binary);
  INFO(added.body);
  REQUIRE(added.status == 200);
  CHECK(added.header("content-type") == "application/json");
  CHECK(added.header("access-control-allow-origin") == "*");
  CHECK(added.body == "{\"inserted\":[{\"version\":4,\"fingerprint\":\"" + lower(alice) +
                          "\"}],\"updated\":[],\"deleted\":[],\"ignored\":[],\"invalid\":[]}\n");
  CHECK(eventually([&] { return ks.count("adds") == 1; }));  // forwarded like any submission
  // Served as stored: cleaned and re-framed by the gateway, the same packets as its armor.
  CHECK(gw.get("/pks/v2/certs/by-vfingerprint/04" + alice).body ==
        dearmored(dir, gw.get(get_target(alice)).body));

  const HttpResult again = post(binary);
  CHECK_THAT(again.body, Contains("\"ignored\":[{\"version\":4,\"fingerprint\":\"" + lower(alice) +
                                  "\",\"comment\":"));
  CHECK_THAT(again.body, Contains("\"inserted\":[]"));

  // Not well formed: 422, one line; nothing stored.
  const HttpResult junk = post(std::string("\x00not a cert", 11));
  CHECK(junk.status == 422);
  CHECK(junk.header("access-control-allow-origin") == "*");
  CHECK(std::count(junk.body.begin(), junk.body.end(), '\n') == 1);
  CHECK(post("").status == 422);
  const HttpResult secret = post(read_file(data_dir() + "/alice-secret.asc"));
  CHECK(secret.status == 422);
  CHECK_THAT(secret.body, Contains("secret"));

  // curl -F keytext=@file: multipart/form-data, on v2 and on /pks/add alike.
  const std::string base = "http://" + gw.address();
  const auto v2 = run({"curl", "-sS", "-F", "keytext=@" + data_dir() + "/bob.asc",
                       base + "/pks/v2/certs"});
  INFO(v2.out);
  CHECK_THAT(v2.out, Contains("\"inserted\":[{\"version\":4,\"fingerprint\":\"" +
                              lower(fixture("BOB_FPR")) + "\"}]"));
  const auto legacy = run({"curl", "-sS", "-F", "other=x", "-F",
                           "keytext=@" + data_dir() + "/carol.asc", base + "/pks/add"});
  INFO(legacy.out);
  CHECK(legacy.exit_code == 0);
  CHECK(gw.get(get_target(fixture("CAROL_FPR"))).header("x-hkp-cache") == "hit");
  const auto no_part = run({"curl", "-sS", "-F", "other=x", base + "/pks/v2/certs"});
  CHECK_THAT(no_part.out, Contains("no keytext part"));
}
