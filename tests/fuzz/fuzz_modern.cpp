// RFC 9580 v6 keys, v4 keys with its new algorithms, and their signatures to hkp/modern.hpp:
// parsing and verifying never crash, and nothing made of fuzzer bytes verifies as the RFC sample
// key's signature over data it never signed (a forged signature would take a break of Ed25519).
#include <cstdint>
#include <string_view>

#include "hkp/modern.hpp"

namespace {

// The public key packet body of RFC 9580's sample v6 certificate (Appendix A.3).
const unsigned char kSampleKey[] = {
    0x06, 0x63, 0x87, 0x7f, 0xe3, 0x1b, 0x00, 0x00, 0x00, 0x20, 0xf9, 0x4d, 0xa7,
    0xbb, 0x48, 0xd6, 0x0a, 0x61, 0xe5, 0x67, 0x70, 0x6a, 0x65, 0x87, 0xd0, 0x33,
    0x19, 0x99, 0xbb, 0x9d, 0x89, 0x1a, 0x08, 0x24, 0x2e, 0xad, 0x84, 0x54, 0x3d,
    0xf8, 0x95, 0xa3};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace hkpgw::hkp;
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  static const auto sample =
      modern::parse_key(std::string_view(reinterpret_cast<const char*>(kSampleKey), sizeof kSampleKey));
  if (!sample) __builtin_trap();
  if (auto key = modern::parse_key(bytes)) {
    if (key->fingerprint.size() != (key->version == 6 ? 32u : 20u)) __builtin_trap();
    (void)modern::fingerprint_hex(*key);
  }
  if (auto sig = modern::parse_signature(bytes)) {
    (void)modern::issuer_fingerprint_hex(*sig);
    // Verified over data the sample key never signed: its genuine direct-key signature (a seed)
    // may verify over the key alone, but nothing binds the key to itself or certifies "fuzz".
    (void)modern::verify_over_key(*sample, *sig, *sample);
    if (modern::verify_subkey_binding(*sample, *sig, *sample) ||
        modern::verify_certification(*sample, *sig, *sample, 13, "fuzz")) {
      __builtin_trap();
    }
  }
  return 0;
}
