// ASCII armor: whatever decodes must armor and decode back to the same bytes.
#include <cstdint>
#include <string_view>

#include "hkp/armor.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto decoded = hkpgw::hkp::dearmor(text);
  if (!decoded) return 0;
  if (decoded->binary.size() > size) __builtin_trap();  // never larger than the input
  auto again = hkpgw::hkp::dearmor(hkpgw::hkp::armor_public_keys(decoded->binary));
  if (!decoded->binary.empty() && (!again || again->binary != decoded->binary)) __builtin_trap();
  return 0;
}
