// Build identity, shown by --version, the home page, op=stats and the build_info metric.
#pragma once

#include <string_view>

namespace hkpgw::gateway {

// From the VERSION file at the repository's root, through CMake (hkpgw_observe's definition).
#ifndef HKPGW_VERSION
#error "HKPGW_VERSION is defined by CMake from the VERSION file"
#endif
inline constexpr std::string_view kVersion = HKPGW_VERSION;
inline constexpr std::string_view kVersionString = "hkp-gateway " HKPGW_VERSION;

}  // namespace hkpgw::gateway
