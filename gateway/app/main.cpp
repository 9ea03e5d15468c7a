// hkp-gateway's command line (docs/contract.md). Wiring only: everything else is in App.
#include <malloc.h>

#include <cstdio>
#include <iostream>
#include <string>
#include <string_view>
#include <vector>

#include "cache/store.hpp"
#include "config/config.hpp"
#include "gateway/app/app.hpp"
#include "gateway/app/cache_cli.hpp"
#include "gateway/observe/log.hpp"
#include "gateway/observe/version.hpp"

namespace {

constexpr std::string_view kUsage =
    "usage: hkp-gateway [--config FILE]\n"
    "       hkp-gateway --check-config FILE\n"
    "       hkp-gateway [--config FILE] cache import FILE... | export [FILE] | stats | verify\n"
    "                                          | purge FINGERPRINT... | compact\n"
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
    "Cache maintenance works on the cache.path of the config (or the defaults):\n"
    "  cache import FILE... pre-warm from keyring exports (gpg --export, armored or binary)\n"
    "  cache export [FILE]  write every cached key, armored (stdout without FILE)\n"
    "  cache stats          counts and sizes\n"
    "  cache verify         check every record and index entry; exit 1 on inconsistencies\n"
    "  cache purge FPR...   remove keys by fingerprint\n"
    "  cache compact        rewrite data.mdb without its free pages (LMDB never shrinks it)\n"
    "stats, verify and export work next to a running gateway; import, purge and compact need it\n"
    "stopped.\n"
    "\n"
    "Signals: SIGHUP reloads the config; SIGTERM/SIGINT stop gracefully.\n";

int usage_error(const std::string& what) {
  std::cerr << "hkp-gateway: " << what << "\n\n" << kUsage;
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace hkpgw;
  // Request bodies (up to max_body_bytes each, max_body_memory together) get mappings of their
  // own, returned to the system when freed: glibc otherwise raises this threshold to the largest
  // block freed so far, after which a burst of large uploads stays resident once it is over.
  mallopt(M_MMAP_THRESHOLD, 256 << 10);
  std::string config_path;
  std::vector<std::string> cache_args;  // the words after "cache"
  bool cache_command = false;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (cache_command && arg != "--config" && arg != "-c") {
      cache_args.emplace_back(arg);
      continue;
    }
    if (arg == "cache" && !cache_command) {
      cache_command = true;
      continue;
    }
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
        const auto cfg = gateway::load_config(file);
        for (const auto& n : config::notices(cfg)) std::cerr << n << "\n";
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
    cfg = config_path.empty() ? config::defaults() : gateway::load_config(config_path);
  } catch (const config::ConfigError& e) {
    for (const auto& p : e.problems()) std::cerr << p << "\n";
    std::cerr << "hkp-gateway: not started: the config has problems\n";
    return 1;
  }
  if (cache_command) return gateway::run_cache_command(cfg, cache_args);
  gateway::log::capture_library_stderr();
  gateway::log::detect_journal();
  try {
    return gateway::App(std::move(cfg), config_path).run();
  } catch (const std::exception& e) {
    gateway::log::error("startup_failed", {{"error", e.what()}});
    return 1;
  }
}
