// ASCII armor (RFC 4880 section 6, RFC 9580 section 6) in both directions, strictly: what an
// upload or an upstream answer says it is, it must be. Pure functions, no RNP: the decoder runs
// before any OpenPGP parsing, and the encoder on every cache hit.
#pragma once

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

// CRC-24 of RFC 4880 section 6.1.
std::uint32_t crc24(std::string_view data);

}  // namespace hkpgw::hkp
