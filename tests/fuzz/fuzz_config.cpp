// TOML config files: load_string either returns a Config or throws ConfigError with problems.
#include <cstdint>
#include <string_view>

#include "config/config.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    (void)hkpgw::config::load_string(text, "fuzz.toml");
  } catch (const hkpgw::config::ConfigError& e) {
    if (e.problems().empty()) __builtin_trap();  // an error always says what is wrong
  }
  return 0;
}
