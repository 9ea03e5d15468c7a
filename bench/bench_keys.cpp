// Key handling and cache figures: RNP parse and merge times for a typical key and for a flooded
// one, cache import rate and bytes per cached key. Prints a table; asserts nothing.
//   bench_keys            (run by `make bench`, after the test fixtures exist)
#include <chrono>
#include <cstdio>
#include <sstream>

#include "hkp/keyring.hpp"
#include "support/forge.hpp"
#include "support/harness.hpp"

using namespace hkpgw;
using namespace hkpgw::test;
using Clock = std::chrono::steady_clock;

namespace {

template <class F>
double per_call_ms(int n, F f) {
  const auto t = Clock::now();
  for (int i = 0; i < n; ++i) f();
  return std::chrono::duration<double, std::milli>(Clock::now() - t).count() / n;
}

void row(const std::string& what, const std::string& value) {
  std::printf("  %-58s %s\n", what.c_str(), value.c_str());
}
std::string ms(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "%.3f ms", v);
  return b;
}

std::string field_of(const std::string& text, const std::string& key) {
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.starts_with(key + ": ")) return line.substr(key.size() + 2);
  }
  return "?";
}

}  // namespace

int main() {
  config::KeysConfig limits;
  const std::string v1 = hkp::parse_keys(read_file(data_dir() + "/alice.asc"), limits).keys.at(0).packets;
  const std::string v2 = key_packets(read_file(data_dir() + "/alice-v2.asc"));
  const std::string flood = flooded(key_packets(read_file(data_dir() + "/alice.asc")), 2500);
  const std::string fpr = fixture("ALICE_FPR");

  std::puts("key handling (RNP, one thread):");
  row("parse + clean a typical key (ed25519, 2 UIDs, 1 subkey)",
      ms(per_call_ms(200, [&] { hkp::parse_keys(v1, limits); })));
  row("merge a typical key (cached v1 + incoming v2)",
      ms(per_call_ms(200, [&] { hkp::merge_key(v1, v2, fpr, limits); })));
  row("merge an identical copy (result: unchanged)",
      ms(per_call_ms(200, [&] { hkp::merge_key(v1, v1, fpr, limits); })));
  row("merge a flooded copy (2500 third-party sigs) into a cached key",
      ms(per_call_ms(10, [&] { hkp::merge_key(v1, flood, fpr, limits); })));
  row("flooded key size in / served after cleaning",
      std::to_string(flood.size()) + " B / " +
          std::to_string(hkp::parse_keys(flood, limits).keys.at(0).packets.size()) + " B");

  std::puts("cache import (hkp-gateway cache import, 5000 fresh ed25519 keys):");
  TempDir dir;
  const std::string keys = dir / "bulk.asc";
  if (run({HKPGW_KEYGEN, "5000", keys, "bench"}).exit_code != 0) return 1;
  const std::string cfg = dir / "c.toml";
  write_file(cfg, "upstream = []\n[cache]\npath = \"" + dir / "cache" + "\"\n");
  const auto t = Clock::now();
  const auto imported = run({HKPGW_BINARY, "--config", cfg, "cache", "import", keys});
  const double secs = std::chrono::duration<double>(Clock::now() - t).count();
  row("wall time incl. process start", std::to_string(secs) + " s (" +
                                           std::to_string(static_cast<int>(5000 / secs)) + " keys/s)");
  row("as the command reports it", imported.out.substr(imported.out.find(';') + 2,
                                                       imported.out.find('\n') - imported.out.find(';') - 2));
  const auto stats = run({HKPGW_BINARY, "--config", cfg, "cache", "stats"});
  row("bytes per cached key (pages in use / keys, indexes included)", field_of(stats.out, "bytes_per_key"));
  row("data.mdb size for 5000 keys", field_of(stats.out, "cache_file_bytes") + " B");
  const auto t2 = Clock::now();
  run({HKPGW_BINARY, "--config", cfg, "cache", "import", keys});
  row("re-import of the same 5000 (all unchanged: parse and compare)",
      std::to_string(std::chrono::duration<double>(Clock::now() - t2).count()) + " s");
  return 0;
}
