// The web pages in a real browser: headless Chromium (Debian's) driven by tests/js/web_check.mjs
// searches, follows a result, copies and downloads a key, pastes a fingerprint, uploads by paste
// and by file, reads help and an error page, does it again without JavaScript and on a phone's
// screen, and runs axe-core on every page. This file checks what it saw in the DOM. Screenshots
// stay in build/tests/artifacts/web/ after the run.
#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include "support/actors.hpp"

using namespace hkpgw;
using namespace hkpgw::test;
using Catch::Matchers::Contains;
using Catch::Matchers::EndsWith;
using Catch::Matchers::StartsWith;

namespace {

std::string text(const boost::json::value& v) {
  return v.is_string() ? std::string(v.as_string()) : std::string();
}

// "CD48 4131 ... 5881" as the page should show it.
std::string grouped(const std::string& fpr) {
  std::string out;
  for (std::size_t i = 0; i < fpr.size(); i += 4) {
    if (i) out += i == fpr.size() / 2 ? "  " : " ";
    out += fpr.substr(i, 4);
  }
  return out;
}

}  // namespace

TEST_CASE("the web pages work in a real browser", "[integration][web]") {
  TempDir dir;
  TestKeyserver ks(dir, "ks", "server", "normal", {"alice.asc", "carol.asc", "eve.asc"});
  Gateway gw{GatewayConfig(dir).upstreams({{"ks", ks.url()}})};
  REQUIRE(gw.started());
  const std::string alice = fixture("ALICE_FPR"), carol = fixture("CAROL_FPR"),
                    eve = fixture("EVE_FPR"), bob = fixture("BOB_FPR"), dave = fixture("DAVE_FPR");
  const std::string artifacts = std::string(HKPGW_ARTIFACTS_DIR) + "/web";
  boost::json::object config{{"base", "http://" + gw.address()},
                             {"artifacts", artifacts},
                             {"alice", alice},
                             {"carol", carol},
                             {"eve", eve},
                             {"upload_file", data_dir() + "/dave.asc"},
                             {"upload_text", read_file(data_dir() + "/bob.asc")}};
  write_file(dir / "web.json", boost::json::serialize(config));
  const RunResult r =
      run({"node", std::string(HKPGW_SOURCE_DIR) + "/tests/js/web_check.mjs", dir / "web.json"}, {},
          std::chrono::seconds(180));
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  boost::system::error_code ec;
  const boost::json::value seen = boost::json::parse(r.out, ec);
  REQUIRE_FALSE(ec);
  // One browser session, checked in parts (no SECTIONs: each would run the browser again).

  {  // search by address lists the key, readable, linked to its page
    CHECK(text(seen.at("home").at("title")) == "Find an OpenPGP key · hkp-gateway");
    CHECK_THAT(text(seen.at("search").at("url")), EndsWith("/search?q=alice%40example.org"));
    const auto& found = seen.at("search").at("articles").as_array();
    REQUIRE(found.size() == 1);
    CHECK(text(found[0].at("link")) == "/key/" + alice);
    CHECK(text(found[0].at("fingerprint")) == grouped(alice));
    CHECK(found[0].at("uids").as_array().size() == 2);
    // The subkey with its algorithm, size and use (from its binding signature's key flags).
    CHECK_THAT(text(found[0].at("subkeys").at(0)), Contains("ECDH 255-bit, to encrypt"));
  }
  {  // the key page: grouped fingerprint, copy, download, how to import
    const auto& key = seen.at("key");
    CHECK_THAT(text(key.at("url")), EndsWith("/key/" + alice));
    CHECK(text(key.at("articles").at(0).at("fingerprint")) == grouped(alice));
    CHECK_THAT(text(key.at("facts")), Contains("Used tocertify, sign"));  // dt, then dd
    CHECK(key.at("copy_visible").as_bool());
    CHECK(text(key.at("copied")) == grouped(alice));
    CHECK(text(key.at("copy_label")) == "Copied");
    CHECK(text(key.at("download_name")) == alice + ".asc");
    CHECK_THAT(text(key.at("download_text")), StartsWith("-----BEGIN PGP PUBLIC KEY BLOCK-----"));
    const std::string howto = text(key.at("howto"));
    CHECK_THAT(howto, Contains("gpg --keyserver hkp://" + gw.address() + " --recv-keys " + alice));
    CHECK_THAT(howto, Contains("sq keyserver --policy insecure --server hkp://" + gw.address()));
    CHECK_THAT(howto, Contains("Thunderbird") && Contains("GpgFrontend"));
  }
  {  // a pasted fingerprint with spaces goes to the key page, and revoked is unmistakable
    const auto& c = seen.at("carol");
    CHECK_THAT(text(c.at("url")), EndsWith("/key/" + carol));
    const auto& article = c.at("articles").at(0);
    CHECK_THAT(text(article.at("revoked_banner")), StartsWith("Revoked."));
    CHECK_THAT(text(article.at("classes")), Contains("is-revoked"));
  }
  {  // a hostile user ID is shown as text: no markup, no script, no dialog
    const auto& e = seen.at("eve");
    const std::string uid = text(e.at("articles").at(0).at("uids").at(0));
    CHECK_THAT(uid, Contains("<script>alert(1)</script>") &&
                        Contains("<img src=x onerror=alert(2)>") && Contains("\"q\""));
    // The character that would show "gro.elpmaxe@eve" as an address is written out instead.
    CHECK_THAT(uid, Contains("[U+202E]gro.elpmaxe@eve"));
    CHECK(uid.find("\u202e") == std::string::npos);
    CHECK(e.at("smuggled").as_int64() == 0);
    CHECK(e.at("key_page_smuggled").as_int64() == 0);
    CHECK(seen.at("seen").at("dialogs").as_array().empty());
  }
  {  // upload by paste and by file answers in /pks/add's words; junk is refused
    CHECK(text(seen.at("upload_paste").at("h1")) == "Uploaded");
    CHECK_THAT(text(seen.at("upload_paste").at("result")), StartsWith(bob + ": added"));
    CHECK(text(seen.at("upload_file").at("h1")) == "Uploaded");
    CHECK_THAT(text(seen.at("upload_file").at("result")), StartsWith(dave + ": added"));
    CHECK(text(seen.at("upload_junk").at("h1")) == "Not uploaded");
    CHECK_FALSE(text(seen.at("upload_junk").at("result")).empty());
    // The uploaded keys are served.
    CHECK(gw.get(get_target(bob)).status == 200);
  }
  {  // help says lookups work and never names an upstream
    const std::string help = text(seen.at("help").at("text"));
    CHECK_THAT(help, Contains("Lookups work."));
    CHECK_THAT(help, Contains("Public keyservers answering: 1 of 1"));
    CHECK_THAT(help, Contains("keyserver hkp://" + gw.address()));
    CHECK(text(seen.at("help").at("html")).find(ks.url()) == std::string::npos);
  }
  {  // errors are pages for browsers
    CHECK(seen.at("error").at("status").as_int64() == 404);
    CHECK(text(seen.at("error").at("h1")) == "Not found");
    CHECK(text(seen.at("not_found").at("h1")) == "No key found");
  }
  {  // without JavaScript it works, and on a phone nothing is wider than the screen
    CHECK(text(seen.at("nojs").at("h1")) == "Keys for alice@example.org");
    CHECK(seen.at("nojs").at("articles").as_int64() == 1);
    CHECK_FALSE(seen.at("nojs").at("copy_visible").as_bool());
    for (const auto& [name, overflow] : seen.at("phone").as_object()) {
      INFO(name);
      CHECK_FALSE(overflow.as_bool());
    }
  }
  {  // no CSP violation, no console error, and axe-core finds nothing
    CHECK(seen.at("seen").at("csp_violations").as_array().empty());
    CHECK(seen.at("seen").at("console_errors").as_array().empty());
    for (const auto& [name, violations] : seen.at("axe").as_object()) {
      INFO(name << ": " << boost::json::serialize(violations));
      CHECK(violations.as_array().empty());
    }
  }
}

TEST_CASE("web answers carry a strict CSP and robots.txt keeps crawlers off keys",
          "[integration][web]") {
  TempDir dir;
  Gateway gw{GatewayConfig(dir)};
  REQUIRE(gw.started());
  for (const std::string path : {"/", "/help", "/upload", "/search?q=nobody%40example.org"}) {
    const HttpResult r = gw.get(path);
    INFO(path);
    CHECK_THAT(r.header("content-security-policy"),
               StartsWith("default-src 'none'; script-src 'self'; style-src 'self'"));
    CHECK(r.header("referrer-policy") == "no-referrer");
    CHECK(r.header("x-frame-options") == "DENY");
  }
  const HttpResult robots = gw.get("/robots.txt");
  CHECK(robots.status == 200);
  CHECK_THAT(robots.body, Contains("Disallow: /\n") && Contains("Allow: /help"));
  // HKP clients keep their one-line text errors; only browsers get pages.
  const HttpResult plain = gw.get("/pks/lookup?op=get&search=nobody@example.org");
  CHECK_THAT(plain.header("content-type"), StartsWith("text/plain"));
  const HttpResult html = http_request(gw.address(), "GET", "/pks/lookup?op=get", "",
                                       {"Accept: text/html,application/xhtml+xml"});
  CHECK_THAT(html.header("content-type"), StartsWith("text/html"));
  CHECK(html.status == 400);
  CHECK_THAT(html.body, Contains("<h1>The request was refused</h1>"));
  // A key page for something that is not a fingerprint.
  CHECK(gw.get("/key/<script>").status == 404);
  CHECK(gw.get("/key/" + std::string(40, 'G')).status == 404);
  CHECK(gw.get("/search?q=" + std::string(300, 'a')).status == 400);
}

TEST_CASE("a browser over its budget gets a 429 page with Retry-After", "[integration][web]") {
  TempDir dir;
  Gateway gw{
      GatewayConfig(dir).limits("key_lookups = \"1/min\"\nkey_lookups_burst = 1\nexempt = []\n")};
  REQUIRE(gw.started());
  const std::string page = "/key/" + std::string(40, 'A');
  const std::vector<std::string> browser = {"Accept: text/html"};
  CHECK(http_request(gw.address(), "GET", page, "", browser).status == 404);  // spent the one
  const HttpResult limited = http_request(gw.address(), "GET", page, "", browser);
  CHECK(limited.status == 429);
  CHECK_THAT(limited.header("content-type"), StartsWith("text/html"));
  CHECK_FALSE(limited.header("retry-after").empty());
  CHECK_THAT(limited.body,
             Contains("<h1>Too many requests</h1>") && Contains("over its budget of key lookups"));
  // gpg and curl keep the line of text.
  const HttpResult text = gw.get(page);
  CHECK(text.status == 429);
  CHECK_THAT(text.header("content-type"), StartsWith("text/plain"));
}
