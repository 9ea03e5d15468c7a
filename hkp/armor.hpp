// ASCII armor (RFC 4880 section 6, RFC 9580 section 6) in both directions, strictly: what an
// upload or an upstream answer says it is, it must be. Pure functions, no RNP: the decoder runs
// before any OpenPGP parsing, and the encoder on every cache hit.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "hkp/problem.hpp"

namespace hkpgw::hkp {

// What a piece of input turned out to be.
struct Dearmored {
  std::string binary;          // the packets of every block, concatenated
  bool private_block = false;  // a "PRIVATE KEY BLOCK" (or "SECRET KEY BLOCK") was among them
};

// Input holding one or more armor blocks (text around them is ignored, as in a mail body) or
// binary packets (no "-----BEGIN PGP" anywhere: returned as they are). Refused with 400 and one
// line: a block labelled anything but PUBLIC/PRIVATE KEY BLOCK (a MESSAGE, a SIGNATURE), a
// block without its END line or with another label there, characters outside base64, a CRC-24
// that does not match. A private block is decoded and flagged: callers refuse all of it (422).
// Cost is linear in the input; the result is never larger than the input.
Result<Dearmored> dearmor(std::string_view data);

// ASCII armor of binary OpenPGP packets as a PUBLIC KEY BLOCK, with the CRC-24 line, ending in
// a newline. Pure and cheap: the cache-hit path uses it.
std::string armor_public_keys(std::string_view packets);

// The same armor written a piece at a time, for outputs of any size (cache export): text goes
// to `out`, and `drain` (when given) is called to empty it whenever it passes 64 KiB and at the
// end. write() takes the packets in pieces of any length; finish() adds the CRC and END lines.
class ArmorWriter {
 public:
  explicit ArmorWriter(std::string& out, std::function<void(std::string&)> drain = {});
  void write(std::string_view packets);
  void finish();

 private:
  std::string& out_;
  std::function<void(std::string&)> drain_;
  std::uint32_t crc_ = 0xB704CEu;
  unsigned char carry_[3] = {};
  std::size_t carry_n_ = 0;
  std::size_t line_ = 0;
};

// CRC-24 of RFC 4880 section 6.1; crc24_update continues one over more data (start: kCrc24Init).
inline constexpr std::uint32_t kCrc24Init = 0xB704CEu;
std::uint32_t crc24_update(std::uint32_t crc, std::string_view data);
inline std::uint32_t crc24(std::string_view data) { return crc24_update(kCrc24Init, data) & 0xFFFFFFu; }

// Appends the bytes of one line of base64 to `out`, carrying `acc`/`bits` across lines; `ended`
// is set by padding ('='), after which more data is an error. False on a non-base64 character.
bool decode_base64_line(std::string_view line, std::string& out, std::uint32_t& acc, int& bits,
                        bool& ended);

// "-----BEGIN PGP PUBLIC KEY BLOCK-----" -> "PUBLIC KEY BLOCK" (prefix "-----BEGIN PGP "), or "".
std::string_view armor_label(std::string_view line, std::string_view prefix);
inline constexpr std::string_view kArmorBegin = "-----BEGIN PGP ";
inline constexpr std::string_view kArmorEnd = "-----END PGP ";

}  // namespace hkpgw::hkp
