// OpenPGP key data (an upload, an upstream answer): structural filter, verification and
// cleaning (RNP's, and hkp/modern's for v6 keys and v4 keys with RFC 9580's algorithms), and a
// merge of the input into each key it yielded. A cleaned key parses again to one key with the
// same fingerprint (a modern one to the same bytes: its cleaning is one pass); a merge never
// loses the key.
#include <cstdint>
#include <string_view>

#include "hkp/key_filter.hpp"
#include "hkp/keyring.hpp"
#include "hkp/modern_keyring.hpp"
#include "hkp/usage.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  hkpgw::config::KeysConfig limits;
  (void)hkpgw::hkp::filter_keys(input, limits);
  // The web pages read key flags from stored copies: any bytes, no crash, a bounded answer.
  for (const auto& [fpr, flags] : hkpgw::hkp::key_flags(input)) {
    if (fpr.size() != 40 && fpr.size() != 64) __builtin_trap();
    (void)hkpgw::hkp::usage_words(flags);
  }
  const auto parsed = hkpgw::hkp::parse_keys(input, limits);
  for (const auto& k : parsed.keys) {
    const auto again = hkpgw::hkp::parse_keys(k.packets, limits);
    if (again.keys.size() != 1 || again.keys[0].info.fingerprint != k.info.fingerprint) {
      __builtin_trap();
    }
    if (hkpgw::hkp::is_modern_key(k.packets) && again.keys[0].packets != k.packets) {
      __builtin_trap();
    }
    const auto merged = hkpgw::hkp::merge_key(k.packets, input, k.info.fingerprint, limits);
    (void)merged;
  }
  (void)hkpgw::hkp::bare_revocations(input);
  (void)hkpgw::hkp::keyring_chunks(input, 3);
  return 0;
}
