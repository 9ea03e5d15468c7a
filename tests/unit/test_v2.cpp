// HKP v2 parsing and formatting, multipart submissions, and the one JSON string quoter.
#include <boost/json.hpp>
#include <catch2/catch.hpp>
#include <limits>

#include "hkp/index.hpp"
#include "hkp/submission.hpp"
#include "hkp/text.hpp"
#include "hkp/v2.hpp"

using namespace hkpgw::hkp;

TEST_CASE("v2 paths become lookups with binary or JSON answers", "[v2][unit]") {
  const std::string fpr = "A2D09A19150279F966C7DE0E116CE4D8CC373801";
  for (const std::string& path :
       {"/pks/v2/certs/by-vfingerprint/04" + fpr, "/pks/v2/certs/by-vfingerprint/4/" + fpr,
        std::string("/pks/v2/certs/by-vfingerprint/04/a2d09a19150279f966c7de0e116ce4d8cc373801")}) {
    auto r = parse_v2_lookup(path);
    INFO(path);
    REQUIRE(r.has_value());
    CHECK(r->op == Op::get);
    CHECK(r->v2);
    CHECK(r->search == Search{SearchKind::fingerprint, fpr});
  }
  auto r = parse_v2_lookup("/pks/v2/certs/by-keyid/116ce4d8cc373801");
  REQUIRE(r.has_value());
  CHECK(r->search == Search{SearchKind::long_keyid, "116CE4D8CC373801"});
  r = parse_v2_lookup("/pks/v2/certs/by-identity/%3CAlice%2Btag%40Example.ORG%3E");
  REQUIRE(r.has_value());
  CHECK(r->search == Search{SearchKind::email, "alice+tag@example.org"});
  r = parse_v2_lookup("/pks/v2/index/alice@example.org");
  REQUIRE(r.has_value());
  CHECK(r->op == Op::index);
  CHECK(r->v2);
  r = parse_v2_lookup("/pks/v2/index/04" + fpr);
  REQUIRE(r.has_value());
  CHECK(r->search == Search{SearchKind::fingerprint, fpr});

  const auto status = [](const std::string& path) { return parse_v2_lookup(path).error().status; };
  CHECK(status("/pks/v2/certs/by-keyid") == 403);
  CHECK(status("/pks/v2/index/") == 403);
  CHECK(status("/pks/v2/certs/by-vfingerprint/" + fpr) == 404);        // no version octet
  CHECK(status("/pks/v2/certs/by-vfingerprint/0x04" + fpr) == 404);    // 0x
  CHECK(status("/pks/v2/certs/by-vfingerprint/06" + fpr) == 404);      // v6 octet, v4 length
  CHECK(parse_v2_lookup("/pks/v2/certs/by-vfingerprint/06" + std::string(64, 'a'))->search ==
        Search{SearchKind::fingerprint, std::string(64, 'A')});                     // v6
  CHECK(status("/pks/v2/certs/by-vfingerprint/05" + std::string(64, 'A')) == 404);  // v5
  CHECK(status("/pks/v2/certs/by-vfingerprint/") == 403);
  CHECK(status("/pks/v2/certs/by-keyid/CC373801") == 404);             // short key IDs
  CHECK(status("/pks/v2/certs/by-identity/Alice") == 501);             // user ID text
  CHECK(status("/pks/v2/certs/by-identity/a@b@c") == 404);
  CHECK(status("/pks/v2/certs/by-identity/" + std::string(600, 'a') + "@b.example") == 404);
  CHECK(status("/pks/v2/certs/by-keyidx/116CE4D8CC373801") == 501);    // no such category
  CHECK(status("/pks/v2/certs") == 501);                               // submissions only
  CHECK(status("/pks/v2/canonical/a@b.example") == 501);

  CHECK(v2_allowed_methods("/pks/v2/certs/by-keyid") == "GET, HEAD, OPTIONS");
  CHECK(v2_allowed_methods("/pks/v2/index/x") == "GET, HEAD, OPTIONS");
  CHECK(v2_allowed_methods("/pks/v2/certs") == "POST, OPTIONS");
  CHECK(v2_allowed_methods("/pks/v2/prefixlog").empty());
  CHECK(v2_allowed_methods("/pks/v2/certsx").empty());
}

TEST_CASE("the v2 JSON listing parses, names certificates by fingerprint only", "[v2][unit]") {
  IndexEntry e;
  e.id = "A2D09A19150279F966C7DE0E116CE4D8CC373801";
  e.algo = 1;
  e.bits = 3072;
  e.created = 1548158185;  // 2019-01-22T11:56:25Z
  e.expires = 1600000000;
  e.uids = {{"Alice \"A\" <alice@example.org>", 1548158185, 0, false},
            {std::string("bad \xff\xfe utf-8 \x01", 14), 0, 0, true}};
  // One subkey of a key held here (everything known), one read back from a query record.
  e.subkeys = {{"4390A716E948D6110750C615003E910CA8439763", 18, 255, 1548158185, 0, true},
               {"5490A716E948D6110750C615003E910CA8439763"}};
  IndexEntry keyid_only;
  keyid_only.id = "116CE4D8CC373801";
  const std::vector<IndexEntry> entries = {e, keyid_only};
  const std::string json = format_json_index(entries, 1700000000);
  boost::system::error_code ec;
  const boost::json::value doc = boost::json::parse(json, ec);
  INFO(json);
  REQUIRE_FALSE(ec);
  REQUIRE(doc.as_array().size() == 1);  // the key ID alone is left out
  const auto& cert = doc.as_array()[0].as_object();
  CHECK(cert.at("fingerprint").as_string() == "a2d09a19150279f966c7de0e116ce4d8cc373801");
  CHECK(cert.at("algorithm").at("name").as_string() == "RSA (Encrypt or Sign)");
  CHECK(cert.at("algorithm").at("bitLength").as_int64() == 3072);
  CHECK(cert.at("creation").as_string() == "2019-01-22T11:56:25Z");
  CHECK(cert.at("isExpired").as_bool());
  const auto& uids = cert.at("userIDs").as_array();
  CHECK(uids[0].at("uidString").as_string() == "Alice \"A\" <alice@example.org>");
  CHECK(uids[1].at("uidString").as_string() == "bad \xEF\xBF\xBD\xEF\xBF\xBD utf-8 \x01");
  CHECK(uids[1].at("isRevoked").as_bool());
  const auto& subkeys = cert.at("subkeys").as_array();
  REQUIRE(subkeys.size() == 2);
  CHECK(subkeys[0].at("fingerprint").as_string() == "4390a716e948d6110750c615003e910ca8439763");
  CHECK(subkeys[0].at("algorithm").at("name").as_string() == "ECDH");
  CHECK(subkeys[0].at("algorithm").at("bitLength").as_int64() == 255);
  CHECK(subkeys[0].at("creation").as_string() == "2019-01-22T11:56:25Z");
  CHECK(subkeys[0].at("isRevoked").as_bool());
  CHECK_FALSE(subkeys[0].at("isExpired").as_bool());
  CHECK_FALSE(subkeys[0].as_object().contains("expiration"));
  // Nothing but the fingerprint is known, and nothing else is claimed.
  CHECK(subkeys[1].as_object().size() == 2);
  CHECK(format_json_index({}, 0) == "[]\n");
  CHECK(rfc3339(1) == "1970-01-01T00:00:01Z");
  CHECK(rfc3339(kMaxRfc3339) == "9999-12-31T23:59:59Z");
  CHECK(rfc3339(kMaxRfc3339 + 1).empty());
  CHECK(rfc3339(0).empty());
  // Found by fuzz_mr_index: unknown algorithm and size once printed as nothing ("code":}).
  IndexEntry unknown;
  unknown.id = e.id;
  unknown.created = std::numeric_limits<std::int64_t>::max();
  const std::vector<IndexEntry> odd = {unknown};
  const std::string odd_json = format_json_index(odd, 0);
  INFO(odd_json);
  CHECK_FALSE(boost::json::parse(odd_json, ec).is_null());
  CHECK_FALSE(ec);
  CHECK(odd_json.find("creation") == std::string::npos);
}

TEST_CASE("displayable text writes out what would reorder or hide text", "[web][unit]") {
  CHECK(hkpgw::hkp::displayable("Alice <a@b.example>") ==
        "Alice <a@b.example>");  // markup: the template's
  CHECK(hkpgw::hkp::displayable("caf\xC3\xA9 \xE2\x80\xAEgro\x01") ==
        "caf\xC3\xA9 [U+202E]gro[U+0001]");
  CHECK(hkpgw::hkp::displayable("\xC2\x9B\xE2\x81\xA6x\xE2\x80\x8F") ==
        "[U+009B][U+2066]x[U+200F]");
  CHECK(hkpgw::hkp::displayable("a\xff b") == "a\xEF\xBF\xBD b");  // not UTF-8: U+FFFD
  CHECK(hkpgw::hkp::displayable("\xD7\xA9\xD7\x9C\xD7\x95\xD7\x9D") ==
        "\xD7\xA9\xD7\x9C\xD7\x95\xD7\x9D");  // Hebrew stays
}

TEST_CASE("json_string escapes controls and replaces bytes that are not UTF-8", "[v2][unit]") {
  CHECK(json_string("a\"b\\c\nd\x7f") == "\"a\\\"b\\\\c\\nd\\u007f\"");
  CHECK(json_string("caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x94\x91") ==
        "\"caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x94\x91\"");  // valid: kept as it is
  CHECK(json_string("\xC0\xAF") == "\"\\ufffd\\ufffd\"");            // overlong '/'
  CHECK(json_string("\xED\xA0\x80") == "\"\\ufffd\\ufffd\\ufffd\"");  // a surrogate
  CHECK(json_string("\xF4\x90\x80\x80") == "\"\\ufffd\\ufffd\\ufffd\\ufffd\"");  // > U+10FFFF
  CHECK(json_string("\xE2\x82") == "\"\\ufffd\\ufffd\"");            // cut short
  CHECK(json_string(std::string("\0", 1)) == "\"\\u0000\"");
  // A right-to-left override and a C1 control stay characters, written as escapes: a user ID
  // shown from JSON cannot reorder the text around it.
  CHECK(json_string("a\xE2\x80\xAE"
                    "b\xC2\x9B") == "\"a\\u202eb\\u009b\"");
}

TEST_CASE("multipart/form-data submissions: the keytext part, hostile shapes refused",
          "[v2][unit]") {
  const std::string type = "multipart/form-data; boundary=------------------------abc123";
  const std::string body =
      "--------------------------abc123\r\n"
      "Content-Disposition: form-data; name=\"other\"\r\n\r\nx\r\n"
      "--------------------------abc123\r\n"
      "Content-Disposition: form-data; name=\"keytext\"; filename=\"k.asc\"\r\n"
      "Content-Type: application/octet-stream\r\n\r\n"
      "-----BEGIN PGP PUBLIC KEY BLOCK-----\r\n\r\nxx\r\n-----END PGP PUBLIC KEY BLOCK-----\r\n"
      "\r\n--------------------------abc123--\r\n";
  auto s = parse_submission(type, body, "");
  REQUIRE(s.has_value());
  CHECK(s->keytext ==
        "-----BEGIN PGP PUBLIC KEY BLOCK-----\r\n\r\nxx\r\n-----END PGP PUBLIC KEY BLOCK-----\r\n");
  // Quoted boundary, upper-case header names.
  s = parse_submission("Multipart/Form-Data; BOUNDARY=\"b\"",
                       "--b\r\nCONTENT-DISPOSITION: form-data; name=\"keytext\"\r\n\r\nK\r\n--b--",
                       "");
  REQUIRE(s.has_value());
  CHECK(s->keytext == "K");
  const auto refused = [](const std::string& t, const std::string& b) {
    auto r = parse_submission(t, b, "");
    return r ? std::string("accepted") : r.error().message();
  };
  CHECK_THAT(refused("multipart/form-data", "--b\r\n"), Catch::Contains("boundary"));
  CHECK_THAT(refused("multipart/form-data; boundary=" + std::string(71, 'b'), ""),
             Catch::Contains("boundary"));
  CHECK_THAT(refused("multipart/form-data; boundary=b", "no delimiter here"),
             Catch::Contains("without its boundary"));
  CHECK_THAT(refused("multipart/form-data; boundary=b",
                     "--b\r\nContent-Disposition: form-data; name=\"keytext\"\r\n\r\n"
                     "K, never ended"),
             Catch::Contains("cut short"));
  CHECK_THAT(refused("multipart/form-data; boundary=b",
                     "--b\r\nContent-Disposition: form-data; name=\"keytext\"\r\n\r\n\r\n--b--"),
             Catch::Contains("empty"));
  std::string many;  // more parts than are looked at, keytext last
  for (int i = 0; i < 100; ++i) {
    many += "--b\r\nContent-Disposition: form-data; name=\"x\"\r\n\r\n1\r\n";
  }
  many += "--b\r\nContent-Disposition: form-data; name=\"keytext\"\r\n\r\nK\r\n--b--";
  CHECK_THAT(refused("multipart/form-data; boundary=b", many), Catch::Contains("no keytext part"));
  // v2's media type parameter is no reason to refuse a raw body.
  s = parse_submission("application/pgp-keys; armor=no", "\x99\x01", "");
  REQUIRE(s.has_value());
  CHECK(s->keytext == "\x99\x01");
}

TEST_CASE("a prefix log: hex prefixes, one per line, anything else skipped", "[hkp][unit]") {
  using hkpgw::hkp::parse_prefix_log;
  const auto p = parse_prefix_log("10fe8cf1\r\n5B74AE43\r\n646ad4c9\n10fe8cf1\r\nnot-hex!\r\nab\r\n"
                                  "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0\r\n"
                                  "2d4b8599",
                                  100);
  CHECK(p == std::vector<std::string>{"10fe8cf1", "2d4b8599", "5b74ae43", "646ad4c9"});
  CHECK(parse_prefix_log("", 10).empty());
  CHECK(parse_prefix_log("aaaa\nbbbb\ncccc\n", 2).size() == 2);  // at most as many as asked for
}
