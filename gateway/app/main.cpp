// hkp-gateway's command line (docs/hkp-gateway.8.md). Wiring only: everything else is in App and
// the cache commands. CLI11 parses it, so `--config=FILE` and `COMMAND --help` work as they do
// elsewhere; every usage error exits 2 with one line naming what was wrong.
#include <malloc.h>

#include <CLI/CLI.hpp>
#include <iostream>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "gateway/app/app.hpp"
#include "gateway/app/cache_cli.hpp"
#include "gateway/observe/log.hpp"
#include "gateway/observe/version.hpp"

namespace {

using hkpgw::gateway::CacheCommand;

constexpr const char* kFooter =
    "Signals: SIGHUP reloads the config (a bad file keeps the running one); SIGTERM and SIGINT\n"
    "stop gracefully. The manual: man 8 hkp-gateway.";

// The cache maintenance commands, one subcommand each, all writing into `command`.
void add_cache_commands(CLI::App& app, CacheCommand& command) {
  auto* cache = app.add_subcommand("cache", "maintain the cache at the config's cache.path");
  cache->require_subcommand(1);
  cache->footer(
      "stats, verify, export and backup work beside a running gateway; import, purge, compact\n"
      "and restore need the cache to themselves and refuse while a gateway holds it.\n"
      "--config FILE may come before or after the command.\n");
  auto verb = [&](const char* name, const char* what) {
    auto* sub = cache->add_subcommand(name, what);
    sub->footer("");
    sub->callback([&command, name] { command.verb = name; });
    return sub;
  };
  verb("import",
       "pre-warm from keyring exports (gpg --export, armored or binary); revocations "
       "of cached keys are applied")
      ->add_option("FILE", command.files, "keyring files")
      ->type_name("")
      ->required();
  verb("export", "write every cached key, armored")
      ->add_option("FILE", command.files, "where to write (default: standard output)")
      ->type_name("")
      ->expected(0, 1);
  verb("stats", "print counts and sizes");
  verb("verify", "check every record and index entry; exit 1 on inconsistencies");
  verb("purge", "remove keys and everything that indexes them")
      ->add_option("FINGERPRINT", command.files, "v4 fingerprints, 40 hex digits")
      ->type_name("")
      ->required();
  verb("compact", "rewrite data.mdb without its free pages (LMDB never shrinks the file)");
  verb("backup", "write a consistent, compacted copy of the whole cache (mode 0600)")
      ->add_option("FILE", command.files, "the copy to write")
      ->type_name("")
      ->required()
      ->expected(1);
  verb("restore", "verify a backup, then replace data.mdb with it, keeping its mode and owner")
      ->add_option("FILE", command.files, "a file cache backup wrote")
      ->type_name("")
      ->required()
      ->expected(1);
}

// " cache backup" for a usage error in `cache backup`: the commands parsed so far.
std::string where(const CLI::App& app) {
  std::string path;
  for (const CLI::App* at = &app;;) {
    const auto subs = at->get_subcommands();
    if (subs.empty()) return path;
    at = subs.front();
    path += " " + at->get_name();
  }
}

}  // namespace

int main(int argc, char** argv) {
  using namespace hkpgw;
  // Request bodies (up to max_body_bytes each, max_body_memory together) get mappings of their
  // own, returned to the system when freed: glibc otherwise raises this threshold to the largest
  // block freed so far, after which a burst of large uploads stays resident once it is over.
  mallopt(M_MMAP_THRESHOLD, 256 << 10);

  CLI::App app(
      "hkp-gateway: an HKP keyserver gateway. Serves OpenPGP keys to gpg, sq and other HKP "
      "clients from an LMDB cache, asking HTTPS upstream keyservers on a miss.",
      "hkp-gateway");
  app.fallthrough();  // --config may follow the cache command too, as it always could
  app.footer(kFooter);
  app.set_version_flag("--version", std::string(gateway::kVersionString), "print the version");
  std::string config_path;
  std::string check_path;
  auto* config_opt = app.add_option("-c,--config", config_path,
                                    "run with this TOML config (default: the embedded defaults)");
  app.add_option("--check-config", check_path,
                 "validate FILE, print every problem, exit 0 (valid) or 1")
      ->type_name("FILE")
      ->excludes(config_opt);
  config_opt->type_name("FILE");
  CacheCommand command;
  add_cache_commands(app, command);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --help, --version
    std::cerr << "hkp-gateway" << where(app) << ": " << e.what() << "\n"
              << "Run \"hkp-gateway --help\" (or \"hkp-gateway cache COMMAND --help\") for the "
                 "usage.\n";
    return 2;
  }

  if (!check_path.empty()) {
    if (!command.verb.empty()) {
      std::cerr << "hkp-gateway: --check-config takes no command\n";
      return 2;
    }
    try {
      const auto cfg = gateway::load_config(check_path);
      for (const auto& n : config::notices(cfg)) std::cerr << n << "\n";
      std::cout << check_path << ": OK\n";
      return 0;
    } catch (const config::ConfigError& e) {
      for (const auto& p : e.problems()) std::cerr << p << "\n";
      return 1;
    }
  }

  config::Config cfg;
  try {
    cfg = config_path.empty() ? config::defaults() : gateway::load_config(config_path);
  } catch (const config::ConfigError& e) {
    for (const auto& p : e.problems()) std::cerr << p << "\n";
    std::cerr << "hkp-gateway: not started: the config has problems\n";
    return 1;
  }
  if (!command.verb.empty()) return gateway::run_cache_command(cfg, command);
  gateway::log::capture_library_stderr();
  gateway::log::detect_journal();
  try {
    return gateway::App(std::move(cfg), config_path).run();
  } catch (const std::exception& e) {
    gateway::log::error("startup_failed", {{"error", e.what()}});
    return 1;
  }
}
