#include <catch2/catch.hpp>

#include "cache/record.hpp"

using namespace hkpgw;
using namespace hkpgw::cache;

namespace {

hkp::ParsedKey sample_key() {
  hkp::ParsedKey k;
  k.info.fingerprint = "4DC89C5EAD0C41A5D76E3E0DF8864A8BB8E106B6";
  k.info.algo = 22;
  k.info.bits = 255;
  k.info.created = 1700000000;
  k.info.expires = 1800000000;
  k.info.uids = {{"Alice <alice@example.org>", "alice@example.org", 1700000001, false},
                 {"Old <old@example.org>", "old@example.org", 1700000002, true}};
  k.info.subkeys = {{"7A9AD36F8B328CA76CAB9DDE603E4FFBC76FA132", 18, 255, 1700000003, 0, false}};
  k.packets = std::string("\x99\x00\x33" "binary\0packets", 17);
  return k;
}

}  // namespace

TEST_CASE("key records round trip, packets readable without decoding the info", "[cache][unit]") {
  const auto k = sample_key();
  const std::string bytes = encode_key_record(k, 1712345678, "ubuntu");
  auto v = decode_key_record(bytes);
  REQUIRE(v);
  CHECK(v->fetched_at == 1712345678);
  CHECK(v->upstream == "ubuntu");
  CHECK(v->packets == k.packets);
  auto info = decode_key_info(v->info_bytes);
  REQUIRE(info);
  CHECK(info->fingerprint == k.info.fingerprint);
  REQUIRE(info->uids.size() == 2);
  CHECK(info->uids[1].revoked);
  CHECK(info->uids[1].email == "old@example.org");
  REQUIRE(info->subkeys.size() == 1);
  CHECK(info->subkeys[0].fingerprint == k.info.subkeys[0].fingerprint);
  CHECK(info->expires == 1800000000);
}

TEST_CASE("truncated or foreign records are refused, not misread", "[cache][unit]") {
  const std::string bytes = encode_key_record(sample_key(), 1, "x");
  for (std::size_t cut : {0ul, 1ul, 9ul, 14ul}) {
    CHECK_FALSE(decode_key_record(bytes.substr(0, cut)));
  }
  std::string foreign = bytes;
  foreign[0] = 99;
  CHECK_FALSE(decode_key_record(foreign));
  auto v = decode_key_record(bytes);
  REQUIRE(v);
  CHECK_FALSE(decode_key_info(v->info_bytes.substr(0, v->info_bytes.size() - 3)));
}

TEST_CASE("query records round trip", "[cache][unit]") {
  QueryRecord neg{100, "", QueryKind::not_found, {}, {}};
  CHECK(decode_query_record(encode_query_record(neg)) == neg);
  QueryRecord fprs{200, "openpgp", QueryKind::fingerprints, {"AA", "BB"}, {}};
  CHECK(decode_query_record(encode_query_record(fprs)) == fprs);
  hkp::IndexEntry e;
  e.id = "F8864A8BB8E106B6";
  e.revoked = true;
  e.uids = {{"Alice", 5, 6, true}};
  QueryRecord idx{300, "ubuntu", QueryKind::index, {}, {e, e}};
  CHECK(decode_query_record(encode_query_record(idx)) == idx);
}

TEST_CASE("query keys normalise what clients consider equal", "[cache][unit]") {
  using hkp::Op;
  using hkp::SearchKind;
  CHECK(query_key(Op::index, {SearchKind::text, "Alice Example"}) ==
        query_key(Op::vindex, {SearchKind::text, "alice example"}));
  CHECK(query_key(Op::get, {SearchKind::email, "a@b"}) != query_key(Op::index, {SearchKind::email, "a@b"}));
  CHECK(query_key(Op::index, {SearchKind::text, std::string(2000, 'x')}).size() <= 480);
}

TEST_CASE("a fingerprint is 20 bytes (v4) or 32 (v6), read from hex digits of either case",
          "[cache][unit]") {
  const std::string hex = "4DC89C5EAD0C41A5D76E3E0DF8864A8BB8E106B6";
  const auto f = Fingerprint::from_hex(hex);
  REQUIRE(f);
  CHECK(f->bytes().size() == 20);
  CHECK(f->bytes().substr(0, 2) == "\x4d\xc8");
  CHECK(f->hex() == hex);
  CHECK(Fingerprint::from_hex("4dc89c5ead0c41a5d76e3e0df8864a8bb8e106b6") == f);
  CHECK(Fingerprint::from_bytes(f->bytes()) == f);
  CHECK_FALSE(Fingerprint::from_hex("XYZ"));
  CHECK_FALSE(Fingerprint::from_hex(std::string(40, 'G')));
  CHECK_FALSE(Fingerprint::from_bytes(std::string(19, 'x')));
  const auto v6 = Fingerprint::from_hex(std::string(64, 'a'));
  REQUIRE(v6);
  CHECK(v6->bytes() == std::string(32, '\xaa'));
  CHECK(v6->hex() == std::string(64, 'A'));
  CHECK(*v6 != *f);
  CHECK(Fingerprint::from_bytes(v6->bytes()) == v6);
  CHECK_FALSE(Fingerprint::from_hex(std::string(63, 'A')));
  CHECK_FALSE(Fingerprint::from_hex(std::string(66, 'A')));
  CHECK_FALSE(Fingerprint::from_bytes(std::string(31, 'x')));
}

TEST_CASE("records are little-endian whatever the host: a cache file moves between machines",
          "[cache][unit]") {
  // u8 format | i64 fetched_at | u32 length of "ubuntu" | "ubuntu" ...
  const std::string bytes = encode_key_record(sample_key(), 0x0102030405060708, "ubuntu");
  REQUIRE(bytes.size() > 19);
  CHECK(bytes.substr(1, 8) == std::string("\x08\x07\x06\x05\x04\x03\x02\x01", 8));
  CHECK(bytes.substr(9, 4) == std::string("\x06\x00\x00\x00", 4));
  CHECK(bytes.substr(13, 6) == "ubuntu");
}
