// The VKS front through the real binary, against a real-HTTPS test keyserver: the requests
// GpgFrontend's key-server module sends (upload, refresh by key ID and by fingerprint, by
// address), and curl as Hagrid's documentation shows it.
#include <catch2/catch.hpp>

#include <future>
#include <csignal>
#include <algorithm>
#include <sstream>

#include "support/actors.hpp"

using namespace hkpgw;
using namespace hkpgw::test;
using Catch::Matchers::Contains;
using Catch::Matchers::StartsWith;

namespace {


// The upload body GpgFrontend sends for a key file of the test data.
std::string upload_json(const std::string& file) {
  return "{\"keytext\":" + json_quoted(read_file(data_dir() + "/" + file)) + "}";
}

HttpResult vks_post(const Gateway& gw, const std::string& path, const std::string& json) {
  return http_request(gw.address(), "POST", path, json, {"Content-Type: application/json"});
}

// The "token" of an upload's answer ("" when it has none).
std::string token_of(const std::string& answer) {
  const std::string key = "\"token\":\"";
  const auto at = answer.find(key);
  if (at == std::string::npos) return {};
  const auto start = at + key.size();
  return answer.substr(start, answer.find('"', start) - start);
}

}  // namespace

TEST_CASE("GpgFrontend's VKS flow: upload, then refresh by key ID and by fingerprint",
          "[integration][vks]") {
  TempDir dir;
  TestKeyserver ks(dir, "ks", "server", "normal", {"bob.asc"});  // does not know alice
  Gateway gw{GatewayConfig(dir).upstreams({{"ks", ks.url()}})};
  REQUIRE(gw.started());
  const std::string alice = fixture("ALICE_FPR");

  const HttpResult up = vks_post(gw, "/vks/v1/upload", upload_json("alice.asc"));
  INFO(up.body);
  REQUIRE(up.status == 200);
  CHECK(up.header("content-type") == "application/json");
  CHECK_THAT(up.body, StartsWith("{\"key_fpr\":\"" + alice + "\""));
  CHECK_THAT(up.body, Contains("\"alice@example.org\":\"published\""));
  CHECK_THAT(up.body, Contains("\"token\":\"hkpgw-" + alice + "\""));
  CHECK(ks.count("adds") == 1);  // forwarded like any /pks/add

  // Sync: GpgFrontend asks by fingerprint and by key ID; both come from the cache.
  const HttpResult by_fpr = gw.get("/vks/v1/by-fingerprint/" + alice);
  REQUIRE(by_fpr.status == 200);
  CHECK(by_fpr.header("content-type") == "application/pgp-keys");
  CHECK(by_fpr.header("content-disposition") == "attachment; filename=\"" + alice + ".asc\"");
  CHECK(by_fpr.header("access-control-allow-origin") == "*");
  CHECK_THAT(by_fpr.body, StartsWith("-----BEGIN PGP PUBLIC KEY BLOCK-----"));
  const HttpResult by_id = gw.get("/vks/v1/by-keyid/" + alice.substr(24));
  REQUIRE(by_id.status == 200);
  CHECK(by_id.body == by_fpr.body);
  CHECK(ks.count("gets") == 0);

  // A subkey's fingerprint and key ID name the key too, as in Hagrid; the file is the primary's.
  const std::string sub = fixture("ALICE_SUB_FPR");
  const HttpResult by_sub = gw.get("/vks/v1/by-keyid/" + sub.substr(24));
  REQUIRE(by_sub.status == 200);
  CHECK(by_sub.header("content-disposition") == "attachment; filename=\"" + alice + ".asc\"");

  // By address (percent-encoded, as QUrl::toPercentEncoding writes it).
  const HttpResult by_email = gw.get("/vks/v1/by-email/alice%40example.org");
  REQUIRE(by_email.status == 200);
  CHECK(by_email.body == by_fpr.body);

  // The token names the key for request-verify: the gateway serves the addresses already.
  const HttpResult verify = vks_post(
      gw, "/vks/v1/request-verify",
      "{\"token\":\"hkpgw-" + alice + "\",\"addresses\":[\"alice@example.org\"],\"locale\":[\"en\"]}");
  INFO(verify.body);
  CHECK(verify.status == 200);
  CHECK(verify.body == "{\"key_fpr\":\"" + alice + "\",\"status\":{\"alice@example.org\":\"published\"}}\n");

  // Metrics and access lines carry the front.
  const std::string m = http_get(gw.admin(), "/metrics").body;
  CHECK_THAT(m, Contains("hkp_gateway_requests_total{front=\"vks\",op=\"get\",status=\"200\"} 4"));
  CHECK_THAT(m, Contains("hkp_gateway_requests_total{front=\"vks\",op=\"add\",status=\"200\"} 1"));
  CHECK(gw.process().wait_for("front=vks op=get"));

  // Real gpg imports what the VKS front served.
  Gpg reader;
  const std::string file = dir / "served.asc";
  write_file(file, by_fpr.body);
  REQUIRE(reader({"--import", file}).exit_code == 0);
  CHECK(reader.fingerprints() == std::vector<std::string>{alice});
}

// GpgFrontend's whole key-server session, request for request as its module sends them: the
// Test button, a search and an import over HKP, an upload and a sync over VKS.
TEST_CASE("GpgFrontend end to end: test, search, import, upload, sync", "[integration][vks]") {
  TempDir dir;
  TestKeyserver ks(dir, "ks", "server", "normal", {"bob.asc"});
  Gateway gw{GatewayConfig(dir).upstreams({{"ks", ks.url()}})};
  REQUIRE(gw.started());
  const std::string bob = fixture("BOB_FPR"), alice = fixture("ALICE_FPR");

  CHECK(gw.get("/").status == 200);  // "Test": any 2xx is "Reachable"

  // Search: QUrl::toPercentEncoding of the address, op=index, options=mr.
  const HttpResult found =
      gw.get("/pks/lookup?search=bob%2Bkeys%40example.org&op=index&options=mr");
  REQUIRE(found.status == 200);
  // Its parser: split on '\n' only, pub lines of at least 7 fields, the key ID in field 1.
  std::string listed;
  std::istringstream lines(found.body);
  for (std::string line; std::getline(lines, line);) {
    std::vector<std::string> fields;
    std::istringstream in(line);
    for (std::string f; std::getline(in, f, ':');) fields.push_back(f);
    if (line.back() == ':') fields.emplace_back();
    if (fields.size() >= 7 && fields[0] == "pub") listed = fields[1];
  }
  REQUIRE(listed == bob);

  // Import: search=0x<pub field 1>&op=get&options=mr, the body handed to GPGME's import.
  const HttpResult got = gw.get("/pks/lookup?search=0x" + listed + "&op=get&options=mr");
  REQUIRE(got.status == 200);
  Gpg gpgme;
  const std::string file = dir / "import.asc";
  write_file(file, got.body);
  REQUIRE(gpgme({"--import", file}).exit_code == 0);
  CHECK(gpgme.fingerprints() == std::vector<std::string>{bob});

  // Publish the user's own key over VKS, then "sync all": each key by fingerprint and key ID.
  const HttpResult up = vks_post(
      gw, "/vks/v1/upload", upload_json("alice.asc"));
  REQUIRE(up.status == 200);
  CHECK_THAT(up.body, Contains("\"key_fpr\":\"" + alice + "\""));
  for (const std::string& fpr : {alice, bob}) {
    const HttpResult by_fpr = gw.get("/vks/v1/by-fingerprint/" + fpr);
    const HttpResult by_id = gw.get("/vks/v1/by-keyid/" + fpr.substr(24));
    INFO(fpr);
    CHECK(by_fpr.status == 200);
    CHECK(by_id.body == by_fpr.body);
    write_file(file, by_fpr.body);
    CHECK(gpgme({"--import", file}).exit_code == 0);
  }
  auto have = gpgme.fingerprints();
  std::sort(have.begin(), have.end());
  std::vector<std::string> want = {alice, bob};
  std::sort(want.begin(), want.end());
  CHECK(have == want);
  CHECK(ks.count("indexes") == 1);  // the search
  CHECK(ks.count("gets") == 1);     // the import; the sync came from the cache
  CHECK(ks.count("adds") == 1);
}

TEST_CASE("VKS lookups of keys the cache lacks go upstream, and misses are 404 in plain text",
          "[integration][vks]") {
  TempDir dir;
  TestKeyserver ks(dir, "ks", "server", "normal", {"bob.asc"});
  Gateway gw{GatewayConfig(dir).upstreams({{"ks", ks.url()}})};
  REQUIRE(gw.started());
  const std::string bob = fixture("BOB_FPR");
  // Lower case and 0x: tolerated, as Hagrid's own front tolerates 0x.
  std::string lower = bob;
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  const HttpResult fetched = gw.get("/vks/v1/by-fingerprint/0x" + lower);
  REQUIRE(fetched.status == 200);
  CHECK(fetched.header("content-disposition") == "attachment; filename=\"" + bob + ".asc\"");
  CHECK(ks.count("gets") == 1);
  CHECK(gw.get("/vks/v1/by-fingerprint/" + bob).header("x-hkp-cache") == "hit");

  const HttpResult missing = gw.get("/vks/v1/by-fingerprint/" + fixture("CAROL_FPR"));
  CHECK(missing.status == 404);
  CHECK(missing.header("content-type") == "text/plain; charset=utf-8");
  CHECK(std::count(missing.body.begin(), missing.body.end(), '\n') == 1);
}

TEST_CASE("malformed VKS requests get a precise answer and the gateway keeps serving",
          "[integration][vks]") {
  TempDir dir;
  Gateway gw{GatewayConfig(dir).upstreams_table("forward_adds = \"none\"\n")};
  REQUIRE(gw.started());
  struct Case {
    std::string target;
    int status;
    std::string says;
  };
  const std::vector<Case> gets = {
      {"/vks/v1/by-keyid/CC373801", 400, "16 hexadecimal digits"},
      {"/vks/v1/by-fingerprint/XYZ", 400, "hexadecimal digits expected"},
      {"/vks/v1/by-fingerprint/" + std::string(50, 'A'), 400, "40 (v4) or 64 (v6)"},
      {"/vks/v1/by-email/not-an-address", 400, "not an email address"},
      {"/vks/v1/by-email/", 400, "not an email address"},
      {"/vks/v1/by-name/alice", 404, "no such VKS endpoint"},
      // Hostile shapes: an encoded line break and NUL (echoed escaped, still one line), and a
      // value far longer than any fingerprint (echoed cut short).
      {"/vks/v1/by-email/evil%0AX-Injected:%201%00@b.example", 400, "not an email address"},
      {"/vks/v1/by-fingerprint/" + std::string(6000, 'Z'), 400, "hexadecimal digits expected"},
      {"/vks/v1/by-fingerprint/" + std::string(6000, 'A'), 400, "not 6000"},
  };
  for (const auto& c : gets) {
    const HttpResult r = gw.get(c.target);
    INFO(c.target << " -> " << r.status << " " << r.body);
    CHECK(r.status == c.status);
    CHECK_THAT(r.body, Contains(c.says));
    CHECK(std::count(r.body.begin(), r.body.end(), '\n') == 1);
    CHECK(r.body.size() < 300);
    CHECK(r.header("x-injected").empty());
  }
  const std::vector<Case> uploads = {
      {"not json", 400, "not JSON"},
      {"[1,2]", 400, "not a JSON object"},
      {"{\"keytext\": 5}", 400, "keytext"},
      {"{\"keytext\": \"\"}", 400, "empty"},
      {"{\"keytext\": \"!!!not base64!!!\"}", 400, "neither an armored key nor base64"},
      {std::string(100000, '[') , 400, "not JSON"},  // nesting far past the limit
      {"{\"keytext\": \"bm90IGEga2V5\"}", 400, "no public key"},  // base64 of no key
  };
  for (const auto& c : uploads) {
    const HttpResult r = vks_post(gw, "/vks/v1/upload", c.target);
    INFO(c.target.substr(0, 60) << " -> " << r.status << " " << r.body);
    CHECK(r.status == c.status);
    CHECK(r.header("content-type") == "application/json");
    CHECK_THAT(r.body, StartsWith("{\"error\":\""));
    CHECK_THAT(r.body, Contains(c.says));
  }
  // A secret key is refused whole, as on /pks/add, and nothing is stored.
  const HttpResult secret = vks_post(
      gw, "/vks/v1/upload",
      "{\"keytext\":" + json_quoted(read_file(data_dir() + "/alice-secret.asc")) + "}");
  CHECK(secret.status == 422);
  CHECK_THAT(secret.body, StartsWith("{\"error\":"));
  CHECK(cached_keys(gw) == 0);
  const HttpResult token = vks_post(gw, "/vks/v1/request-verify",
                                    "{\"token\":\"forged\",\"addresses\":[\"a@b.example\"]}");
  CHECK(token.status == 400);
  CHECK_THAT(token.body, Contains("unknown token"));
  std::string many = "{\"token\":\"hkpgw-" + fixture("ALICE_FPR") + "\",\"addresses\":[";
  for (int i = 0; i <= 100; ++i) many += (i ? ",\"" : "\"") + std::to_string(i) + "@x.example\"";
  const HttpResult too_many = vks_post(gw, "/vks/v1/request-verify", many + "]}");
  CHECK(too_many.status == 400);
  CHECK_THAT(too_many.body, Contains("more than 100 addresses"));
  CHECK(gw.get("/vks/v1/upload").status == 404);  // a GET of the upload path is no lookup
  // A browser's preflight for the JSON upload (keys.openpgp.org's web clients post from pages).
  const HttpResult preflight = http_request(gw.address(), "OPTIONS", "/vks/v1/upload", "",
                                            {"Origin: https://app.example",
                                             "Access-Control-Request-Method: POST",
                                             "Access-Control-Request-Headers: content-type"});
  CHECK(preflight.status == 200);
  CHECK_THAT(preflight.header("access-control-allow-methods"), Contains("POST"));
  CHECK(preflight.header("access-control-allow-headers") == "Content-Type");
  CHECK(preflight.header("access-control-allow-origin") == "*");
  CHECK(gw.get("/").status == 200);               // still serving
}

TEST_CASE("curl as Hagrid's documentation shows it, and a base64 keytext", "[integration][vks]") {
  TempDir dir;
  Gateway gw{GatewayConfig(dir).upstreams_table("forward_adds = \"none\"\n")};
  REQUIRE(gw.started());
  const std::string erin = fixture("ERIN_FPR");
  // The binary key, base64 (Hagrid takes keytext in either form).
  Gpg g;
  REQUIRE(g({"--import", data_dir() + "/erin.asc"}).exit_code == 0);
  const std::string binary = dir / "erin.gpg";
  REQUIRE(g({"--output", binary, "--export", erin}).exit_code == 0);
  const auto b64 = run({"base64", "-w", "76", binary});
  REQUIRE(b64.exit_code == 0);
  const std::string body = dir / "upload.json";
  write_file(body, "{\"keytext\":" + json_quoted(b64.out) + "}");
  const std::string base = "http://" + gw.address();
  const auto up = run({"curl", "-sS", "-X", "POST", "-H", "Content-Type: application/json",
                       "--data-binary", "@" + body, base + "/vks/v1/upload"});
  REQUIRE(up.exit_code == 0);
  CHECK_THAT(up.out, StartsWith("{\"key_fpr\":\"" + erin + "\""));
  const auto got = run({"curl", "-sS", "-f", base + "/vks/v1/by-fingerprint/" + erin});
  REQUIRE(got.exit_code == 0);
  CHECK_THAT(got.out, StartsWith("-----BEGIN PGP PUBLIC KEY BLOCK-----"));
}

TEST_CASE("a VKS upstream: lookups by its paths, uploads with its token, request-verify relayed",
          "[integration][vks]") {
  TempDir dir;
  TestKeyserver hagrid(dir, "hagrid", "server", "normal", {"bob.asc"});  // speaks VKS too
  Gateway gw{GatewayConfig(dir).tables("[[upstream]]\nname = \"hagrid\"\nkind = \"vks\"\nurl = \"" +
                                       hagrid.url() + "\"\n")};
  REQUIRE(gw.started());
  const std::string bob = fixture("BOB_FPR"), alice = fixture("ALICE_FPR");

  // Lookups become /vks/v1/by-* requests; listings come from the keys.
  CHECK(gw.get(get_target(bob)).status == 200);
  CHECK(gw.get("/pks/lookup?op=index&options=mr&search=bob%2Bkeys%40example.org").status == 200);
  CHECK(hagrid.count("gets") == 2);
  CHECK(hagrid.count("lookups") == 0);  // never /pks/lookup
  // A short key ID or free text is nothing VKS answers: not asked.
  CHECK(gw.get("/pks/lookup?op=index&search=Bob").status == 404);
  CHECK(hagrid.count("gets") == 2);

  // GpgFrontend's upload: the upstream's states and token come back.
  const HttpResult up = vks_post(
      gw, "/vks/v1/upload", upload_json("alice.asc"));
  INFO(up.body);
  REQUIRE(up.status == 200);
  CHECK(hagrid.count("adds") == 1);
  CHECK_THAT(up.body, Contains("\"alice@example.org\":\"unpublished\""));
  // The upstream's token, sealed by the gateway: "hkpgw:<seal>:<upstream>:<its token>".
  const std::string token = token_of(up.body);
  REQUIRE(token.size() == 6 + 32 + 1 + 7 + 4 + alice.size());
  CHECK(token.starts_with("hkpgw:"));
  CHECK(token.ends_with(":hagrid:tok-" + alice));

  // request-verify goes to the upstream that issued the token, with its own token.
  const HttpResult verify = vks_post(
      gw, "/vks/v1/request-verify",
      "{\"token\":\"" + token + "\",\"addresses\":[\"alice@example.org\"],\"locale\":[\"de\"]}");
  INFO(verify.body);
  CHECK(verify.status == 200);
  CHECK(verify.body ==
        "{\"key_fpr\":\"" + alice + "\",\"status\":{\"alice@example.org\":\"pending\"}}\n");
  CHECK(hagrid.count("verifies") == 1);
  // A token this gateway did not pass back never leaves it (they were all relayed, 1:1): made
  // up, an old unsealed one, its seal moved to another upstream or token, or one seal changed.
  const std::string seal = token.substr(6, 32);
  std::string bent = token;
  bent[6] = bent[6] == '0' ? '1' : '0';
  for (const std::string& made_up :
       {std::string("hkpgw:hagrid:forged"), "hkpgw:hagrid:tok-" + alice,
        "hkpgw:" + seal + ":hagrid:tok-" + bob, "hkpgw:" + seal + ":gone:tok-" + alice, bent,
        "hkpgw:" + seal + ":hagrid:", "hkpgw:" + seal}) {
    INFO(made_up);
    const HttpResult refused = vks_post(
        gw, "/vks/v1/request-verify",
        "{\"token\":\"" + made_up + "\",\"addresses\":[\"a@b.example\"]}");
    CHECK(refused.status == 400);
    CHECK(refused.body == "{\"error\":\"unknown token: this gateway issued no such token\"}\n");
  }
  CHECK(hagrid.count("verifies") == 1);

  // An HKP client's upload reaches it as a VKS upload too.
  const HttpResult add =
      post_add(gw, "keytext=" + percent_encode_all(read_file(data_dir() + "/erin.asc")));
  CHECK(add.status == 200);
  CHECK_THAT(add.body, Contains("forwarded to hagrid"));
  CHECK(hagrid.count("adds") == 2);

  // The upstream down: request-verify says so, as JSON.
  hagrid.set_mode("fail");
  const HttpResult down = vks_post(
      gw, "/vks/v1/request-verify",
      "{\"token\":\"" + token + "\",\"addresses\":[\"alice@example.org\"]}");
  CHECK(down.status == 503);
  CHECK_THAT(down.body, StartsWith("{\"error\":\"request-verify could not be relayed"));
}

TEST_CASE("a token one replica sealed is relayed by another that shares the cluster secret",
          "[integration][vks][cluster]") {
  TempDir d1, d2, dir;
  TestKeyserver hagrid(dir, "hagrid", "server", "normal", {"bob.asc"});
  const std::string vks =
      "[[upstream]]\nname = \"hagrid\"\nkind = \"vks\"\nurl = \"" + hagrid.url() + "\"\n";
  Gateway a{GatewayConfig(d1).upstreams_table(vks)};
  Gateway b{GatewayConfig(d2).upstreams_table(vks)};
  REQUIRE(a.started());
  REQUIRE(b.started());
  const std::string peers = "peers = [\"" + a.admin() + "\", \"" + b.admin() + "\"]\n";
  set_cluster(a, peers);
  set_cluster(b, peers);
  const HttpResult up = vks_post(a, "/vks/v1/upload", upload_json("alice.asc"));
  REQUIRE(up.status == 200);
  const std::string token = token_of(up.body);
  const std::string verify =
      "{\"token\":\"" + token + "\",\"addresses\":[\"alice@example.org\"]}";
  const HttpResult at_b = vks_post(b, "/vks/v1/request-verify", verify);
  INFO(at_b.body);
  CHECK(at_b.status == 200);
  CHECK(hagrid.count("verifies") == 1);
  // A replica of another cluster (its own random key) refuses it, and relays nothing.
  TempDir d3;
  Gateway other{GatewayConfig(d3).upstreams_table(vks)};
  REQUIRE(other.started());
  CHECK(vks_post(other, "/vks/v1/request-verify", verify).status == 400);
  CHECK(hagrid.count("verifies") == 1);
}

TEST_CASE("a reload that changes an upstream's kind gets an upstream of the new kind",
          "[integration][vks]") {
  TempDir dir;
  TestKeyserver hagrid(dir, "hagrid", "server", "normal", {"bob.asc", "alice.asc"});  // both APIs
  Gateway gw{GatewayConfig(dir).upstreams({{"hagrid", hagrid.url()}})};
  REQUIRE(gw.started());
  REQUIRE(gw.get(get_target(fixture("BOB_FPR"))).status == 200);
  CHECK(hagrid.count("lookups") == 1);  // HKP: /pks/lookup

  std::string toml = read_file(gw.config_path());
  toml.replace(toml.find("name = \"hagrid\"\n"), 16, "name = \"hagrid\"\nkind = \"vks\"\n");
  write_file(gw.config_path(), toml);
  gw.process().signal(SIGHUP);
  REQUIRE(gw.process().wait_for("event=config_reload result=success"));
  REQUIRE(gw.get(get_target(fixture("ALICE_FPR"))).status == 200);
  CHECK(hagrid.count("lookups") == 1);  // same name and url, new kind: /vks/v1/ now
  CHECK(hagrid.count("gets") == 2);
}

TEST_CASE("request-verify relays an upstream answers slowly are bounded, and misses go on",
          "[integration][vks]") {
  TempDir dir;
  TestKeyserver hagrid(dir, "hagrid", "server", "normal", {"bob.asc", "carol.asc"});
  Gateway gw{GatewayConfig(dir).tables("[[upstream]]\nname = \"hagrid\"\nkind = \"vks\"\nurl = \"" +
                                       hagrid.url() + "\"\n")};
  REQUIRE(gw.started());
  const HttpResult up = vks_post(gw, "/vks/v1/upload", upload_json("alice.asc"));
  REQUIRE(up.status == 200);
  const std::string token = token_of(up.body);  // one the gateway sealed: it is relayed
  hagrid.set_mode("slowverify", 1500);
  // Twelve at once, each held 1.5 s upstream (request_timeout is 3 s).
  std::vector<std::future<HttpResult>> relays;
  for (int i = 0; i < 12; ++i) {
    relays.push_back(std::async(std::launch::async, [&gw, &token] {
      return vks_post(gw, "/vks/v1/request-verify",
                      "{\"token\":\"" + token + "\",\"addresses\":[\"alice@example.org\"]}");
    }));
  }
  // Meanwhile a miss is fetched from the same upstream.
  CHECK(gw.get(get_target(fixture("BOB_FPR"))).status == 200);
  int busy = 0;
  std::string statuses;
  for (auto& r : relays) {
    const HttpResult got = r.get();
    statuses += std::to_string(got.status) + " " + got.body.substr(0, 80) + "\n";
    if (got.status == 503) {
      ++busy;
      CHECK_THAT(got.body, Contains("too many request-verify relays in progress"));
      CHECK(got.header("retry-after") == "5");
    }
  }
  INFO(statuses);
  CHECK(busy == 8);  // 4 relayed, the rest refused at once (before: all 12 relayed)
  CHECK(eventually([&] { return hagrid.count("verifies") == 4; }));
  CHECK(hagrid.count("verifies") == 4);
}
