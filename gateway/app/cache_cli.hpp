// `hkp-gateway cache ...`: maintenance of a gateway's cache from the command line
// (docs/contract.md). stats, verify and export open the cache read-only and work next to a running
// gateway; import and purge need the cache to themselves and refuse, with a clear message, while
// a gateway holds it.
#pragma once

#include <string>
#include <vector>

#include "config/config.hpp"

namespace hkpgw::gateway {

// One parsed command line's cache command (main.cpp checks each verb's arity).
struct CacheCommand {
  std::string verb;                // import, export, stats, verify, purge, compact, backup, restore
  std::vector<std::string> files;  // its operands: files, or fingerprints for purge
};

// Returns the exit code: 0 done, 1 failed (message on stderr).
int run_cache_command(const config::Config& cfg, const CacheCommand& command);

}  // namespace hkpgw::gateway
