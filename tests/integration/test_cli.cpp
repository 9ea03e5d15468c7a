// The command line as operators type it: both spellings of --config, help for every command, and
// usage errors that exit 2 with one line naming the command and what was wrong.
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "support/actors.hpp"

using namespace hkpgw::test;
using Catch::Matchers::Contains;
using Catch::Matchers::StartsWith;

namespace {

const std::vector<std::string> kCacheVerbs = {"import", "export",  "stats",  "verify",
                                              "purge",  "compact", "backup", "restore"};

std::string first_line(const std::string& text) { return text.substr(0, text.find('\n')); }

}  // namespace

TEST_CASE("the config given as --config=FILE or --config FILE before or after the cache command",
          "[integration][cli]") {
  TempDir dir;
  const std::string cfg = dir / "gw.toml";
  write_file(cfg, "upstream = []\n[cache]\npath = \"" + dir / "cache" + "\"\n");
  // The cache made by an import through the one spelling, read through every other.
  REQUIRE(run({HKPGW_BINARY, "--config", cfg, "cache", "import", data_dir() + "/alice.asc"})
              .exit_code == 0);
  for (const auto& argv :
       std::vector<std::vector<std::string>>{{HKPGW_BINARY, "--config=" + cfg, "cache", "stats"},
                                             {HKPGW_BINARY, "-c", cfg, "cache", "stats"},
                                             {HKPGW_BINARY, "cache", "stats", "--config", cfg},
                                             {HKPGW_BINARY, "cache", "stats", "--config=" + cfg}}) {
    const auto r = run(argv);
    INFO(argv[1] << " " << argv[2] << "\n" << r.err);
    CHECK(r.exit_code == 0);
    // The cache named by the config, not the default one.
    CHECK_THAT(r.out, StartsWith("cache: " + dir / "cache"));
  }
  const auto check = run({HKPGW_BINARY, "--check-config=" + cfg});
  CHECK(check.exit_code == 0);
  CHECK(check.out == cfg + ": OK\n");
}

TEST_CASE("every command answers --help with its own usage", "[integration][cli]") {
  const auto top = run({HKPGW_BINARY, "--help"});
  CHECK(top.exit_code == 0);
  CHECK_THAT(top.out,
             Contains("--config FILE") && Contains("--check-config FILE") && Contains("cache"));
  const auto cache = run({HKPGW_BINARY, "cache", "--help"});
  CHECK(cache.exit_code == 0);
  for (const auto& verb : kCacheVerbs) {
    CHECK_THAT(cache.out, Contains("  " + verb + " "));
    const auto r = run({HKPGW_BINARY, "cache", verb, "--help"});
    INFO(verb << "\n" << r.out << r.err);
    CHECK(r.exit_code == 0);
    CHECK_THAT(r.out, Contains("Usage: hkp-gateway cache " + verb));
    CHECK(r.err.empty());
  }
  const auto version = run({HKPGW_BINARY, "--version"});
  std::ifstream file(std::string(HKPGW_SOURCE_DIR) + "/VERSION");
  std::string expected;
  std::getline(file, expected);
  CHECK(version.out == "hkp-gateway " + expected + "\n");
}

TEST_CASE("usage errors exit 2 with one line that names the command", "[integration][cli]") {
  struct Case {
    std::vector<std::string> args;
    std::string line;  // the start of the first line on stderr
  };
  const std::vector<Case> cases = {
      {{"--bogus"}, "hkp-gateway: The following argument was not expected: --bogus"},
      {{"--config"}, "hkp-gateway: --config: 1 required FILE missing"},
      {{"cache"}, "hkp-gateway cache: A subcommand is required"},
      {{"cache", "frobnicate"}, "hkp-gateway cache: "},
      {{"cache", "backup"}, "hkp-gateway cache backup: FILE is required"},
      {{"cache", "restore", "a", "b"}, "hkp-gateway cache restore: "},
      {{"cache", "import"}, "hkp-gateway cache import: FILE is required"},
      {{"cache", "purge"}, "hkp-gateway cache purge: FINGERPRINT is required"},
      {{"cache", "stats", "extra"}, "hkp-gateway cache stats: "},
      {{"--check-config", "x.toml", "--config", "y.toml"},
       "hkp-gateway: --config excludes --check-config"},
      {{"--check-config", "x.toml", "cache", "stats"},
       "hkp-gateway: --check-config takes no command"},
  };
  for (const auto& c : cases) {
    std::vector<std::string> argv = {HKPGW_BINARY};
    argv.insert(argv.end(), c.args.begin(), c.args.end());
    const auto r = run(argv);
    INFO(r.err);
    CHECK(r.exit_code == 2);
    CHECK_THAT(first_line(r.err), StartsWith(c.line));
    CHECK(r.out.empty());
    // One line of what was wrong and at most one pointing at --help.
    CHECK(std::count(r.err.begin(), r.err.end(), '\n') <= 2);
  }
}

TEST_CASE("a cache directory the system refuses is a message and exit 1 and not a crash",
          "[integration][cli]") {
  // A symlink loop: the error a root-run test can provoke that an unreadable directory (the
  // packaged unit's state directory, read by another user) gives everyone else. Both used to
  // end in std::terminate.
  TempDir dir;
  std::filesystem::create_symlink("loop", dir / "loop");
  const std::string cfg = dir / "gw.toml";
  write_file(cfg, "upstream = []\n[cache]\npath = \"" + dir / "loop/cache" + "\"\n");
  for (const std::string verb : {"stats", "verify", "compact"}) {
    const auto r = run({HKPGW_BINARY, "--config", cfg, "cache", verb});
    INFO(verb << ": " << r.err);
    CHECK(r.exit_code == 1);
    CHECK_THAT(r.err, Contains("hkp-gateway: cache \"" + dir / "loop/cache" + "\"") &&
                          Contains("Too many levels of symbolic links"));
  }
}
