// The running gateway: builds the pieces in dependency order (io_context, cache, upstream
// snapshot, HKP and admin listeners), runs `threads` worker threads, reloads on SIGHUP and stops
// gracefully on SIGTERM/SIGINT (stop accepting, let requests finish within a grace period, flush
// the cache writer, close LMDB). main() only parses the command line and calls run().
#pragma once

#include <string>

#include "config/config.hpp"

namespace hkpgw::gateway {

// config::load_file and the checks the config layer cannot make (keys.certifier_keys against
// keys.certifiers); throws config::ConfigError naming every problem. Start, reload and
// --check-config all load through it.
config::Config load_config(const std::string& path);

class App {
 public:
  // config_path "" = running on the embedded defaults (SIGHUP then has nothing to reload).
  App(config::Config config, std::string config_path);

  // Blocks until stopped. Returns the process exit code. Throws std::runtime_error (and
  // cache::StoreError) when the gateway cannot start: a listener cannot bind, the cache cannot be
  // opened, a TLS or CA file is unreadable.
  int run();

 private:
  config::Config config_;
  std::string config_path_;
};

}  // namespace hkpgw::gateway
