// The cold path, against going to the upstream directly (the test keyserver, real HTTPS, 20 ms
// of artificial latency standing for the internet):
//   - one miss through the gateway vs the same request straight to the upstream (curl's own
//     time_total, median of 40 distinct keys each; direct opens a TLS connection per request,
//     as clients do, the gateway reuses its pooled one);
//   - 1,000 concurrent identical misses: how many requests reach the upstream;
//   - gpg --refresh-keys of 500 keys (GpgFrontend's "sync all"): straight to the upstream over
//     HKPS vs through a warm gateway over HKP.
// Prints figures; asserts nothing. Loopback only (gpg resolves gateway.test through a hosts file
// of its own in a private mount namespace, never DNS).
#include <future>
#include <sstream>
#include <thread>

#include "bench_util.hpp"
#include "support/actors.hpp"

using namespace hkpgw;
using namespace hkpgw::test;
using namespace hkpgw::bench;

namespace {

constexpr int kLatencyMs = 20;

std::vector<std::string> keygen(const TempDir& dir, int n, const std::string& prefix,
                                std::string& file) {
  file = dir / (prefix + ".asc");
  const auto r = run({HKPGW_KEYGEN, std::to_string(n), file, prefix});
  std::vector<std::string> fprs;
  std::istringstream in(r.out);
  for (std::string line; std::getline(in, line);) fprs.push_back(line);
  return fprs;
}

double curl_ms(const std::vector<std::string>& extra, const std::string& url) {
  std::vector<std::string> argv{"curl", "-s", "-o", "/dev/null", "-w", "%{time_total}"};
  argv.insert(argv.end(), extra.begin(), extra.end());
  argv.push_back(url);
  const auto r = run(argv);
  return r.exit_code == 0 ? std::stod(r.out) * 1000 : -1;
}

void miss_vs_direct(const TempDir& dir, const std::string& corpus, const std::vector<std::string>& fprs) {
  TestKeyserver ks(dir, "ks-miss", "server", "normal", {corpus});
  ks.set_mode("slow", kLatencyMs);
  Gateway gw{GatewayConfig(dir).upstreams({{"ks", ks.url()}})};
  const std::string ca = data_dir() + "/ca.pem";
  gw.get(get_target(fprs.back()));  // the gateway's upstream connection is open from now on
  Stats direct, through;
  for (int i = 0; i < 40; ++i) {
    direct.v.push_back(curl_ms({"--cacert", ca}, ks.url() + get_target(fprs[i])));
    through.v.push_back(curl_ms({}, "http://" + gw.address() + get_target(fprs[40 + i])));
  }
  std::printf("one miss, median of 40 (p90): straight to the upstream %.1f ms (%.1f), "
              "through the gateway %.1f ms (%.1f): %+.1f ms\n",
              direct.pct(50), direct.pct(90), through.pct(50), through.pct(90),
              through.pct(50) - direct.pct(50));
  // Fingerprints nobody has (a corpus fingerprint reversed): the 404 is not held up by the
  // commit of the "not found" it leaves in the cache.
  Stats direct_404, through_404;
  for (int i = 0; i < 40; ++i) {
    const std::string nobody(fprs[100 + i].rbegin(), fprs[100 + i].rend());
    const std::string other(fprs[200 + i].rbegin(), fprs[200 + i].rend());
    direct_404.v.push_back(curl_ms({"--cacert", ca}, ks.url() + get_target(nobody)));
    through_404.v.push_back(curl_ms({}, "http://" + gw.address() + get_target(other)));
  }
  std::printf("one miss of a key nobody has (404), median of 40 (p90): straight to the upstream "
              "%.1f ms (%.1f), through the gateway %.1f ms (%.1f): %+.1f ms\n",
              direct_404.pct(50), direct_404.pct(90), through_404.pct(50), through_404.pct(90),
              through_404.pct(50) - direct_404.pct(50));
}

void identical_misses(const TempDir& dir, const std::string& corpus, const std::string& fpr) {
  TestKeyserver ks(dir, "ks-burst", "server", "normal", {corpus});
  ks.set_mode("slow", 200);
  Gateway gw{
      GatewayConfig(dir).upstreams({{"ks", ks.url()}}).server("max_connections_per_client = 0\n")};
  const std::string target = get_target(fpr);
  const auto t = Clock::now();
  std::vector<std::future<int>> f;
  for (int i = 0; i < 1000; ++i) {
    f.push_back(std::async(std::launch::async, [&] { return gw.get(target).status; }));
  }
  int ok = 0;
  for (auto& x : f) ok += x.get() == 200;
  std::printf("1,000 concurrent identical misses (upstream answers after 200 ms): %d upstream "
              "request(s), %d answered 200, all within %.0f ms\n",
              ks.count("gets"), ok, ms_since(t));
}

void refresh(const TempDir& dir, const std::string& corpus, int n) {
  const std::string d = data_dir();
  // Two upstreams with the same keys: one for gpg directly, with a certificate for gateway.test
  // (dirmngr wants a dotted name), one for the gateway, with localhost's.
  TestKeyserver direct_ks(dir, "ks-direct", "gateway", "normal", {corpus});
  direct_ks.set_mode("slow", kLatencyMs);
  TestKeyserver ks(dir, "ks-refresh", "server", "normal", {corpus});
  ks.set_mode("slow", kLatencyMs);
  const std::string ks_port = direct_ks.url().substr(direct_ks.url().rfind(':') + 1);
  Gateway gw{GatewayConfig(dir).upstreams({{"ks", ks.url()}})};
  Gpg gpg;
  // standard-resolver: the system's, which answers gateway.test from the hosts file; dirmngr's
  // own resolver asked the machine's DNS server for its AAAA record (off loopback), per request.
  write_file(gpg.home() + "/dirmngr.conf", "hkp-cacert " + d + "/ca.pem\nstandard-resolver\n");
  write_file(dir / "hosts", read_file("/etc/hosts") + "\n127.0.0.1 gateway.test\n");
  run({"gpg", "--batch", "--homedir", gpg.home(), "--import", corpus});
  auto timed = [&](const std::string& keyserver) {
    run({"gpgconf", "--kill", "dirmngr"}, {{"GNUPGHOME", gpg.home()}});
    const auto t = Clock::now();
    const auto r = run({"unshare", "-m", "sh", "-c",
                        "mount --bind '" + dir / "hosts" + "' /etc/hosts && GNUPGHOME='" +
                            gpg.home() + "' gpg --batch --no-tty --no-auto-check-trustdb "
                            "--keyserver " + keyserver + " --refresh-keys"},
                       {}, std::chrono::seconds(300));
    const double ms = ms_since(t);
    if (r.exit_code != 0) std::printf("  (gpg exited %d: %s)\n", r.exit_code, r.err.substr(0, 200).c_str());
    return ms;
  };
  // Interleaved, the gateway warmed first: gpg's own cost per key varies from run to run.
  const std::string gw_port = gw.address().substr(gw.address().rfind(':') + 1);
  const double cold = timed("hkp://gateway.test:" + gw_port);
  const std::size_t misses = occurrences(gw.log(), "cache=miss");
  const double warm1 = timed("hkp://gateway.test:" + gw_port);
  const double direct1 = timed("hkps://gateway.test:" + ks_port);
  const double warm2 = timed("hkp://gateway.test:" + gw_port);
  const double direct2 = timed("hkps://gateway.test:" + ks_port);
  const double direct = (direct1 + direct2) / 2, warm = (warm1 + warm2) / 2;
  std::printf("gpg --refresh-keys of %d keys: straight to the upstream %.0f and %.0f ms, through "
              "the gateway cold %.0f ms (%zu misses), warm %.0f and %.0f ms: warm is %.1fx "
              "faster than direct; upstream gets: %d direct, %d through the gateway\n",
              n, direct1, direct2, cold, misses, warm1, warm2, direct / warm,
              direct_ks.count("gets"), ks.count("gets"));
  run({"gpgconf", "--kill", "all"}, {{"GNUPGHOME", gpg.home()}});
}

}  // namespace

int main(int argc, char** argv) {
  const std::string only = argc > 1 ? argv[1] : "";  // "miss" or "refresh": that part alone
  TempDir dir;
  std::string corpus;
  const auto fprs = keygen(dir, 500, "cold", corpus);
  if (fprs.size() != 500) {
    std::fprintf(stderr, "bench_cold: keygen failed\n");
    return 1;
  }
  std::printf("the cold path (upstream latency %d ms):\n", kLatencyMs);
  if (only.empty() || only == "miss") miss_vs_direct(dir, corpus, fprs);
  if (only.empty()) identical_misses(dir, corpus, fprs[100]);
  if (only.empty() || only == "refresh") refresh(dir, corpus, 500);
  return 0;
}
