#include <catch2/catch.hpp>

#include <sstream>

#include "hkp/armor.hpp"
#include "hkp/keyring.hpp"
#include "hkp/keyring_stream.hpp"
#include "hkp/packets.hpp"
#include "support/harness.hpp"

using namespace hkpgw;
using namespace hkpgw::hkp;
using hkpgw::test::data_dir;
using hkpgw::test::read_file;

namespace {

// The binary packets of the fixture keyrings, five keys in all.
std::string five_keys() {
  std::string all;
  for (const char* f : {"alice.asc", "bob.asc", "carol.asc", "dave.asc", "erin.asc"}) {
    auto d = dearmor(read_file(data_dir() + "/" + f));
    REQUIRE(d.has_value());
    all += d->binary;
  }
  return all;
}

std::size_t primaries(std::string_view chunk) {
  const auto packets = split_packets(chunk);
  REQUIRE(packets.has_value());
  std::size_t n = 0;
  for (const auto& p : *packets) n += p.tag == tag::public_key;
  return n;
}

struct Read {
  std::vector<std::string> chunks;
  std::string error;
  bool private_block = false;
};

Read read_all(const std::string& input, std::size_t per_chunk) {
  std::istringstream in(input);
  KeyringStream stream(in, per_chunk);
  Read r;
  while (auto c = stream.next()) r.chunks.push_back(std::move(*c));
  r.error = stream.error();
  r.private_block = stream.private_block();
  return r;
}

std::string joined(const Read& r) {
  std::string all;
  for (const auto& c : r.chunks) all += c;
  return all;
}

}  // namespace

TEST_CASE("a binary keyring comes in chunks of whole keys, nothing lost", "[keys][unit]") {
  const std::string binary = five_keys();
  const Read r = read_all(binary, 2);
  CHECK(r.error.empty());
  REQUIRE(r.chunks.size() == 3);
  CHECK(primaries(r.chunks[0]) == 2);
  CHECK(primaries(r.chunks[1]) == 2);
  CHECK(primaries(r.chunks[2]) == 1);
  CHECK(joined(r) == binary);
  for (const auto& c : r.chunks) CHECK(first_packet(c)->tag == tag::public_key);
}

TEST_CASE("armored keyrings decode to the same chunks, text around blocks ignored",
          "[keys][unit]") {
  const std::string binary = five_keys();
  // Two blocks (as concatenated exports have), CRLF line ends in one, a mail around them.
  const std::string half1 = binary.substr(0, first_packet(binary)->whole.size());
  std::string rest = binary.substr(half1.size());
  std::string second = armor_public_keys(rest);
  std::string crlf;
  for (char c : second) {
    if (c == '\n') crlf += '\r';
    crlf += c;
  }
  const std::string input = "Hello,\nhere are the keys:\n\n" + armor_public_keys(half1) +
                            "\nand more\n" + crlf + "-- \nsignature\n";
  const Read r = read_all(input, 3);
  CHECK(r.error.empty());
  CHECK(joined(r) == binary);
  CHECK_FALSE(r.private_block);
  REQUIRE(r.chunks.size() == 2);
  CHECK(primaries(r.chunks[0]) == 3);
}

TEST_CASE("damaged keyrings stop with one line saying what is wrong", "[keys][unit]") {
  const std::string binary = five_keys();
  const std::string armored = armor_public_keys(binary);

  SECTION("a CRC-24 that does not match") {
    std::string bad = armored;
    const auto at = bad.find('\n', bad.find("\n\n") + 2) + 5;  // inside the first base64 line
    bad[at] = bad[at] == 'A' ? 'B' : 'A';
    CHECK_THAT(read_all(bad, 100).error, Catch::Contains("CRC-24"));
  }
  SECTION("a block without its END line") {
    const std::string cut = armored.substr(0, armored.find("-----END"));
    CHECK_THAT(read_all(cut, 100).error, Catch::Contains("no END line"));
  }
  SECTION("a binary keyring cut inside a packet") {
    const Read r = read_all(binary.substr(0, binary.size() - 7), 100);
    CHECK_THAT(r.error, Catch::Contains("truncated"));
  }
  SECTION("a message is not a keyring") {
    const Read r = read_all("-----BEGIN PGP MESSAGE-----\n\nAAAA\n-----END PGP MESSAGE-----\n", 100);
    CHECK_THAT(r.error, Catch::Contains("not a key"));
  }
  SECTION("a packet header claiming 2 GiB: refused at the header, nothing read for it") {
    const Read r = read_all(std::string("\xC6\xFF\x7F\xFF\xFF\xFF", 6) + "short", 100);
    CHECK_THAT(r.error, Catch::Contains("over 16 MiB"));
    CHECK(r.chunks.empty());
  }
  SECTION("a line of 2 MiB without a newline: stopped at 1 MiB") {
    const std::string header = armored.substr(0, armored.find("\n\n") + 2);
    const Read r = read_all(header + std::string(2 << 20, 'A'), 100);
    CHECK_THAT(r.error, Catch::Contains("over 1 MiB"));
  }
  SECTION("bytes that are not packets") {
    CHECK_THAT(read_all(std::string("\x80\x05\x00", 3) + std::string(1, '\x01'), 100).error,
               Catch::Contains("truncated"));
  }
}

TEST_CASE("a private key block is flagged", "[keys][unit]") {
  const Read r = read_all(read_file(data_dir() + "/alice-secret.asc"), 100);
  CHECK(r.private_block);
}

TEST_CASE("armor written in pieces of any size is the armor of the whole", "[keys][unit]") {
  const std::string binary = five_keys();
  const std::string whole = armor_public_keys(binary);
  for (const std::size_t piece : {std::size_t{1}, std::size_t{2}, std::size_t{5}, std::size_t{64},
                                  std::size_t{4096}, binary.size()}) {
    std::string text, out;
    ArmorWriter w(text, [&](std::string& t) {
      out += t;
      t.clear();
    });
    for (std::size_t at = 0; at < binary.size(); at += piece) {
      w.write(std::string_view(binary).substr(at, piece));
    }
    w.finish();
    INFO("pieces of " << piece << " bytes");
    CHECK(out == whole);
    CHECK(text.empty());
  }
  const auto back = dearmor(whole);
  REQUIRE(back.has_value());
  CHECK(back->binary == binary);
}
