// Hostile-input figures: what a key built to be expensive costs the cleaner, and what cached
// lookups see while the work pool chews on such keys. Prints tables; asserts nothing. Every loop
// is bounded in count and time; all traffic stays on loopback.
//   bench_hardening        (run by `make bench`, after the test fixtures exist)
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <thread>

#include "hkp/keyring.hpp"
#include "bench_util.hpp"
#include "support/actors.hpp"
#include "support/forge.hpp"

using namespace hkpgw;
using namespace hkpgw::test;
using hkpgw::bench::Clock;

namespace {

using hkpgw::bench::ms_since;
using hkpgw::bench::Stats;

void row(const std::string& what, const std::string& value) {
  std::printf("  %-62s %s\n", what.c_str(), value.c_str());
}
std::string fmt(double v, const char* unit = "ms") {
  char b[48];
  std::snprintf(b, sizeof b, "%.3f %s", v, unit);
  return b;
}

// A key made to cost as much as the default limits allow: 99 made-up subkeys, 98 made-up user
// IDs, and forged self-certifications on the first user ID; every forged part needs RNP to
// verify a signature before it is dropped.
std::string worst_case_upload(const std::string& pub) {
  std::string sigs;
  const std::string me = primary_keyid(pub);
  for (int i = 0; i < 400; ++i) sigs += forged_signature(0x13, me, 1700000000u + i);
  return with_fake_subkeys(with_after_first_uid(with_fake_uids(pub, 98), sigs), 99);
}

void cleaning_cost() {
  const std::string pub = key_packets(read_file(data_dir() + "/alice.asc"));
  std::puts("cleaning cost by made-up subkeys (one thread; limits lifted to show the curve):");
  config::KeysConfig open;
  open.max_subkeys = 1'000'000;
  open.max_key_bytes = 64 << 20;
  for (const int n : {500, 1000, 2000, 4000}) {
    const std::string key = with_fake_subkeys(pub, n);
    const auto t = Clock::now();
    const auto out = hkp::parse_keys(key, open);
    const double ms = ms_since(t);
    row(std::to_string(n) + " subkeys (" + std::to_string(key.size() / 1024) + " KiB), per subkey " +
            fmt(ms * 1000 / n, "us"),
        fmt(ms / 1000, "s") + (out.keys.empty() ? " (refused)" : ""));
  }
  config::KeysConfig defaults;
  {
    const std::string key = with_fake_subkeys(pub, 4999);
    const auto t = Clock::now();
    const auto out = hkp::parse_keys(key, defaults);
    row("4999 subkeys with the default max_subkeys (100): refused in", fmt(ms_since(t)));
  }
  {
    const std::string key = worst_case_upload(pub);
    const auto t = Clock::now();
    const auto out = hkp::parse_keys(key, defaults);
    row("worst case within the defaults (" + std::to_string(key.size() / 1024) + " KiB)",
        fmt(ms_since(t)) + ", served " + std::to_string(out.keys.at(0).packets.size()) + " B");
  }
}

void lookups_under_load() {
  std::puts("cached op=get while the pool verifies worst-case uploads (workers = 2):");
  TempDir dir;
  TestKeyserver ks(dir, "ks");
  Gateway gw(dir, {{"ks", ks.url()}}, "", "forward_adds = \"none\"\n[keys]\nworkers = 2\n");
  const std::string target = "/pks/lookup?op=get&options=mr&search=0x" + fixture("ALICE_FPR");
  gw.get(target);
  const std::string upload = worst_case_upload(key_packets(read_file(data_dir() + "/alice-v2.asc")));

  auto measure = [&](int n) {
    Stats s;
    for (int i = 0; i < n; ++i) {
      const auto t = Clock::now();
      gw.get(target);
      s.v.push_back(ms_since(t));
    }
    return s;
  };
  Stats idle = measure(2000);
  std::atomic<bool> stop{false};
  std::atomic<int> uploads{0}, busy{0};
  std::vector<std::thread> uploaders;
  for (int u = 0; u < 2; ++u) {
    uploaders.emplace_back([&] {
      const auto until = Clock::now() + std::chrono::seconds(60);  // bound, whatever happens
      while (!stop && Clock::now() < until) {
        const auto r = http_request(gw.address(), "POST", "/pks/add", upload,
                                    {"Content-Type: application/pgp-keys"});
        ++(r.status == 503 ? busy : uploads);
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  Stats loaded = measure(2000);
  stop = true;
  for (auto& t : uploaders) t.join();
  row("idle: client round trip p50 / p99", fmt(idle.pct(50)) + " / " + fmt(idle.pct(99)));
  row("2 uploaders of worst-case keys: p50 / p99",
      fmt(loaded.pct(50)) + " / " + fmt(loaded.pct(99)));
  row("uploads verified meanwhile (and answered 503 busy)",
      std::to_string(uploads.load()) + " (" + std::to_string(busy.load()) + ")");
}

}  // namespace

int main() {
  cleaning_cost();
  lookups_under_load();
  return 0;
}
