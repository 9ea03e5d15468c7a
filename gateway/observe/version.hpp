// Build identity, shown by --version, the home page, op=stats and the build_info metric.
#pragma once

#include <string_view>

namespace hkpgw::gateway {

inline constexpr std::string_view kVersion = "0.1.0";
inline constexpr std::string_view kVersionString = "hkp-gateway 0.1.0";

}  // namespace hkpgw::gateway
