// VKS request parsing: paths into lookups, upload and request-verify bodies.
#include <catch2/catch.hpp>

#include "hkp/vks.hpp"

using namespace hkpgw::hkp;

TEST_CASE("VKS paths become op=get lookups of one kind", "[vks][unit]") {
  const std::string fpr = "A2D09A19150279F966C7DE0E116CE4D8CC373801";
  auto r = parse_vks_lookup("/vks/v1/by-fingerprint/0xa2d09a19150279f966c7de0e116ce4d8cc373801");
  REQUIRE(r);
  CHECK(r->op == Op::get);
  CHECK(r->search == Search{SearchKind::fingerprint, fpr});
  r = parse_vks_lookup("/vks/v1/by-keyid/116ce4d8cc373801");
  REQUIRE(r);
  CHECK(r->search == Search{SearchKind::long_keyid, "116CE4D8CC373801"});
  r = parse_vks_lookup("/vks/v1/by-email/Alice%2Btag%40Example.ORG");
  REQUIRE(r);
  CHECK(r->search == Search{SearchKind::email, "alice+tag@example.org"});

  CHECK(parse_vks_lookup("/vks/v1/by-keyid/CC373801").error().status == 400);
  CHECK(parse_vks_lookup("/vks/v1/by-fingerprint/" + fpr + "00").error().status == 400);
  // A v6 fingerprint (64 digits) is looked up like a v4 one.
  r = parse_vks_lookup("/vks/v1/by-fingerprint/" + std::string(64, 'a'));
  REQUIRE(r);
  CHECK(r->search == Search{SearchKind::fingerprint, std::string(64, 'A')});
  CHECK(parse_vks_lookup("/vks/v1/by-fingerprint/" + std::string(63, 'a')).error().status == 400);
  CHECK(parse_vks_lookup("/vks/v1/by-email/%3Ca%40b.example%3E").error().status == 400);
  CHECK(parse_vks_lookup("/vks/v1/by-email/@b.example").error().status == 400);
  CHECK(parse_vks_lookup("/vks/v1/").error().status == 404);
  CHECK(parse_vks_lookup("/vks/v2/by-keyid/116CE4D8CC373801").error().status == 404);
}

TEST_CASE("VKS upload bodies: armored or base64 keytext in a JSON object", "[vks][unit]") {
  auto armored = parse_vks_upload(
      R"({"keytext": "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nxx\n-----END PGP PUBLIC KEY BLOCK-----\n"})");
  REQUIRE(armored.has_value());
  CHECK(armored->keytext.starts_with("-----BEGIN PGP PUBLIC KEY BLOCK-----\n"));
  auto b64 = parse_vks_upload("{\"keytext\": \"mDMEZ\\nQ==\"}");  // line breaks inside
  REQUIRE(b64.has_value());
  CHECK(b64->keytext == std::string("\x98\x33\x04\x65", 4));
  CHECK(parse_vks_upload("{\"keytext\": \"abc$\"}").error().status == 400);
  CHECK(parse_vks_upload("{}").error().status == 400);
  CHECK(parse_vks_upload(std::string(40, '[') + std::string(40, ']')).error().status == 400);

  auto v = parse_vks_verify(R"({"token": "t", "addresses": ["A@B.example"], "locale": ["de"]})");
  REQUIRE(v.has_value());
  CHECK(v->token == "t");
  CHECK(v->addresses == std::vector<std::string>{"a@b.example"});
  CHECK(parse_vks_verify(R"({"token": "t", "addresses": [1]})").error().status == 400);
  CHECK(parse_vks_verify(R"({"addresses": []})").error().status == 400);
}
