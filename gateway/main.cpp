// hkp-gateway's command line (DESIGN.md section 4). Wiring only: everything else is in App.
#include <cstdio>
#include <iostream>
#include <string>
#include <string_view>

#include "cache/store.hpp"
#include "config/config.hpp"
#include "gateway/app.hpp"
#include "gateway/log.hpp"
#include "gateway/version.hpp"

namespace {

constexpr std::string_view kUsage =
    "usage: hkp-gateway [--config FILE]\n"
    "       hkp-gateway --check-config FILE\n"
    "       hkp-gateway --version | --help\n"
    "\n"
    "An HKP keyserver gateway: serves OpenPGP keys to gpg, sq and other HKP clients from an\n"
    "LMDB cache, asking HTTPS upstream keyservers on a miss.\n"
    "\n"
    "  --config FILE        run with this TOML config (default: the embedded defaults)\n"
    "  --check-config FILE  validate FILE, print every problem, exit 0 (valid) or 1\n"
    "  --version            print the version\n"
    "  --help               print this help\n"
    "\n"
    "Signals: SIGHUP reloads the config; SIGTERM/SIGINT stop gracefully.\n";

int usage_error(const std::string& what) {
  std::cerr << "hkp-gateway: " << what << "\n\n" << kUsage;
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace hkpgw;
  std::string config_path;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    auto value = [&](std::string_view opt) -> const char* {
      if (i + 1 >= argc) return nullptr;
      (void)opt;
      return argv[++i];
    };
    if (arg == "--help" || arg == "-h") {
      std::cout << kUsage;
      return 0;
    }
    if (arg == "--version") {
      std::cout << gateway::kVersionString << "\n";
      return 0;
    }
    if (arg == "--check-config") {
      const char* file = value(arg);
      if (!file) return usage_error("--check-config needs a FILE");
      try {
        config::load_file(file);
        std::cout << file << ": OK\n";
        return 0;
      } catch (const config::ConfigError& e) {
        for (const auto& p : e.problems()) std::cerr << p << "\n";
        return 1;
      }
    }
    if (arg == "--config" || arg == "-c") {
      const char* file = value(arg);
      if (!file) return usage_error("--config needs a FILE");
      config_path = file;
      continue;
    }
    return usage_error("unknown argument \"" + std::string(arg) + "\"");
  }

  config::Config cfg;
  try {
    cfg = config_path.empty() ? config::defaults() : config::load_file(config_path);
  } catch (const config::ConfigError& e) {
    for (const auto& p : e.problems()) std::cerr << p << "\n";
    std::cerr << "hkp-gateway: not started: the config has problems\n";
    return 1;
  }
  try {
    return gateway::App(std::move(cfg), config_path).run();
  } catch (const std::exception& e) {
    gateway::log::error("startup_failed", {{"error", e.what()}});
    return 1;
  }
}
