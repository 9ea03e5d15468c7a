// `hkp-gateway cache ...`: maintenance of a gateway's cache from the command line
// (docs/contract.md). stats, verify and export open the cache read-only and work next to a running
// gateway; import and purge need the cache to themselves and refuse, with a clear message, while
// a gateway holds it.
#pragma once

#include <string>
#include <vector>

#include "config/config.hpp"

namespace hkpgw::gateway {

// args: the words after "cache". Returns the exit code: 0 done, 1 failed (message on stderr),
// 2 usage error.
int run_cache_command(const config::Config& cfg, const std::vector<std::string>& args);

}  // namespace hkpgw::gateway
