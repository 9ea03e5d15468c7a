// The web pages' files (gateway/http/web/: Mustache templates, the style sheet, the script,
// robots.txt), compiled into the binary by web/embed.cmake.
#pragma once

#include <string_view>

namespace hkpgw::gateway {

struct WebAsset {
  std::string_view name;  // the file's name in gateway/http/web/
  std::string_view text;
};

// The file's text; empty for a name that is none of them.
std::string_view web_asset(std::string_view name);

}  // namespace hkpgw::gateway
