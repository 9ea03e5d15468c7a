#include <catch2/catch.hpp>

#include <cstdio>

#include "hkp/lookup.hpp"

using namespace hkpgw::hkp;

namespace {

Search search_of(const std::string& raw) {
  auto s = parse_search(raw);
  REQUIRE(s);
  return *s;
}

}  // namespace

TEST_CASE("search normalisation: the forms real clients send", "[hkp][unit]") {
  using K = SearchKind;
  auto [raw, kind, value] = GENERATE(table<std::string, K, std::string>({
      // gpg: 0x + upper hex
      {"0x4DC89C5EAD0C41A5D76E3E0DF8864A8BB8E106B6", K::fingerprint,
       "4DC89C5EAD0C41A5D76E3E0DF8864A8BB8E106B6"},
      // any case, 0X, no prefix, inner spaces (as gpg prints fingerprints)
      {"0Xf8864a8bb8e106b6", K::long_keyid, "F8864A8BB8E106B6"},
      {"f8864a8bb8e106b6", K::long_keyid, "F8864A8BB8E106B6"},
      {"4DC8%209C5E%20AD0C%2041A5%20D76E%203E0D%20F886%204A8B%20B8E1%2006B6", K::fingerprint,
       "4DC89C5EAD0C41A5D76E3E0DF8864A8BB8E106B6"},
      {"0xB8E106B6", K::short_keyid, "B8E106B6"},
      // a v6 fingerprint (RFC 9580: 64 digits), as sq and OpenPGP.js print it
      {"0xcb186c4f0609a697e4d52dfa6c722b0c1f1e27c18a56708f6525ec27bad9acc9", K::fingerprint,
       "CB186C4F0609A697E4D52DFA6C722B0C1F1E27C18A56708F6525EC27BAD9ACC9"},
      // emails: %40, raw @, <...>, a leading name, upper case
      {"alice%40example%2Eorg", K::email, "alice@example.org"},
      {"Alice@Example.ORG", K::email, "alice@example.org"},
      {"%3Calice%40example.org%3E", K::email, "alice@example.org"},
      {"Alice%20Example%20%3Calice@example.org%3E", K::email, "alice@example.org"},
      // '+' inside an email is a plus (sq, older GpgFrontend); %2B too
      {"bob+keys@example.org", K::email, "bob+keys@example.org"},
      {"bob%2Bkeys%40example.org", K::email, "bob+keys@example.org"},
      // '+' elsewhere is a space (HTML forms)
      {"Alice+Example", K::text, "Alice Example"},
      {"  Alice   Example ", K::text, "Alice Example"},
      {"cafe", K::text, "cafe"},
  }));
  const Search s = search_of(raw);
  CHECK(s.kind == kind);
  CHECK(s.value == value);
}

TEST_CASE("malformed and unsupported searches", "[hkp][unit]") {
  auto [raw, status] = GENERATE(table<std::string, unsigned>({
      {"", 400},
      {"%20%20", 400},
      {"0xZZZZ", 400},
      {"0x1234", 400},
      {"0x0123456789abcdef0", 400},
      {"0x0123456789ABCDEF0123456789ABCDEF", 501},  // v3
  }));
  auto s = parse_search(raw);
  REQUIRE_FALSE(s);
  CHECK(s.error().status == status);
  CHECK_FALSE(s.error().message().empty());
}

TEST_CASE("lookup requests", "[hkp][unit]") {
  SECTION("gpg --recv-keys") {
    auto r = parse_lookup("op=get&options=mr&search=0xF8864A8BB8E106B6");
    REQUIRE(r);
    CHECK(r->op == Op::get);
    CHECK(r->machine_readable);
    CHECK(r->search.kind == SearchKind::long_keyid);
  }
  SECTION("gpg --search-keys, parameters in any order, unknown ones ignored") {
    auto r = parse_lookup("search=alice%40example%2Eorg&fingerprint=on&x-foo=1&options=mr&op=index");
    REQUIRE(r);
    CHECK(r->op == Op::index);
    CHECK(r->search == Search{SearchKind::email, "alice@example.org"});
  }
  SECTION("gpg --locate-keys sends exact=on: accepted (address lookups are always exact)") {
    auto r = parse_lookup("op=get&options=mr&search=alice%40example.org&exact=on");
    REQUIRE(r);
    CHECK(r->search.kind == SearchKind::email);
  }
  SECTION("options list and case") {
    auto r = parse_lookup("OP=VINDEX&options=NM,MR&search=alice");
    REQUIRE(r);
    CHECK(r->op == Op::vindex);
    CHECK(r->machine_readable);
    CHECK(r->no_modify);
  }
  SECTION("stats needs no search") {
    auto r = parse_lookup("op=stats");
    REQUIRE(r);
    CHECK(r->op == Op::stats);
  }
}

TEST_CASE("query strings in hostile shapes parse as their decoded meaning", "[hkp][unit]") {
  const std::string fpr = "F8864A8BB8E106B6F8864A8BB8E106B6F8864A8B";
  SECTION("percent-encoded names and values, mixed case") {
    auto r = parse_lookup("%6F%50=G%65t&%73earch=0x" + fpr + "&OPTIONS=m%52");
    REQUIRE(r);
    CHECK(r->op == Op::get);
    CHECK(r->machine_readable);
    CHECK(r->search == Search{SearchKind::fingerprint, fpr});
  }
  SECTION("a percent-encoded fingerprint") {
    std::string encoded = "0x";
    for (const unsigned char c : fpr) {  // every digit as %XX
      char escaped[4];
      std::snprintf(escaped, sizeof escaped, "%%%02X", c);
      encoded += escaped;
    }
    auto r = parse_lookup("op=get&search=" + encoded);
    REQUIRE(r);
    CHECK(r->search == Search{SearchKind::fingerprint, fpr});
  }
  SECTION("empty parts, a part without '=', a repeated name: the last one counts") {
    auto r = parse_lookup("&&op=index&&search&search=alice&&op=get&search=0x" + fpr + "&");
    REQUIRE(r);
    CHECK(r->op == Op::get);
    CHECK(r->search.kind == SearchKind::fingerprint);
  }
  SECTION("'+' is a space in a name and in text, a plus inside an address") {
    auto r = parse_lookup("op=index&search=Alice+Example");
    REQUIRE(r);
    CHECK(r->search == Search{SearchKind::text, "Alice Example"});
    r = parse_lookup("op=get&search=bob%2Bx+y@example.org");
    REQUIRE(r);
    CHECK(r->search == Search{SearchKind::email, "bob+x+y@example.org"});
    CHECK_FALSE(parse_lookup("o+p=get&search=0x" + fpr));  // "o p" is no name we know
  }
  SECTION("a hundred thousand unknown parameters: ignored, one pass") {
    std::string many;
    for (int i = 0; i < 100000; ++i) many += "x" + std::to_string(i) + "=%41&";
    auto r = parse_lookup(many + "op=get&search=0x" + fpr);
    REQUIRE(r);
    CHECK(r->search.kind == SearchKind::fingerprint);
  }
  SECTION("truncated and invalid escapes stay as they are") {
    auto r = parse_lookup("op=index&search=a%zz%4");
    REQUIRE(r);
    CHECK(r->search == Search{SearchKind::text, "a%zz%4"});
  }
}

TEST_CASE("op=get takes free text too (SKS and onak answer it with the matching keys)",
          "[hkp][unit]") {
  auto r = parse_lookup("op=get&search=Alice+Example");
  REQUIRE(r);
  CHECK(r->op == Op::get);
  CHECK(r->search == Search{SearchKind::text, "Alice Example"});
}

TEST_CASE("lookup request errors", "[hkp][unit]") {
  auto [query, status, words] = GENERATE(table<std::string, unsigned, std::string>({
      {"search=alice", 400, "missing op"},
      {"op=&search=alice", 400, "missing op"},
      {"op=get", 400, "missing search"},
      {"op=get&search=", 400, "empty search"},
      {"op=frobnicate&search=x", 501, "op=frobnicate"},
      {"op=x-private&search=x", 501, "op=x-private"},
      {"op=hget&search=x", 501, "op=hget"},
      {"op=get&search=0xnothex", 400, "malformed key ID"},
  }));
  auto r = parse_lookup(query);
  REQUIRE_FALSE(r);
  CHECK(r.error().status == status);
  CHECK_THAT(r.error().message(), Catch::Matchers::Contains(words));
}

TEST_CASE("percent coding and form bodies", "[hkp][unit]") {
  CHECK(percent_decode("a%2Bb+c%zz%4", true) == "a+b c%zz%4");
  CHECK(percent_decode("a+b", false) == "a+b");
  CHECK(percent_encode("bob+x@example.org") == "bob%2Bx%40example.org");
  // sq leaves '=' raw in the armor: split on the first '=' only
  CHECK(form_field("keytext=abc==%0A&x=1", "keytext") == std::optional<std::string>("abc==\n"));
  // GpgFrontend sends '+' for space
  CHECK(form_field("keytext=-----BEGIN+PGP", "keytext") == std::optional<std::string>("-----BEGIN PGP"));
  CHECK_FALSE(form_field("other=1", "keytext"));
}

TEST_CASE("email extraction from user IDs", "[hkp][unit]") {
  CHECK(extract_email("Alice <Alice@Example.org>") == std::optional<std::string>("alice@example.org"));
  CHECK(extract_email("alice@example.org") == std::optional<std::string>("alice@example.org"));
  CHECK(extract_email("Alice (work) <a@b.example>") == std::optional<std::string>("a@b.example"));
  CHECK_FALSE(extract_email("Alice Example"));
  CHECK_FALSE(extract_email("Alice <not an address>"));
  CHECK_FALSE(extract_email("@example.org"));
}
