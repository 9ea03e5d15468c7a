// Small text helpers the parsers and formatters share: hex digits and trimming. Pure.
#pragma once

#include <string>
#include <string_view>

namespace hkpgw::hkp {

inline constexpr char kHexUpper[] = "0123456789ABCDEF";
inline constexpr char kHexLower[] = "0123456789abcdef";

// Two upper-case hex digits per byte.
std::string hex_upper(std::string_view bytes);

inline bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

// Without spaces, tabs, CR and LF at either end.
std::string_view trim(std::string_view s);

}  // namespace hkpgw::hkp
