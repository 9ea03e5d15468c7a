// Hostile-input figures: what a key built to be expensive costs the cleaner, and what cached
// lookups see while the work pool chews on such keys. Prints tables; asserts nothing. Every loop
// is bounded in count and time; all traffic stays on loopback.
//   bench_hardening        (run by `make bench`, after the test fixtures exist)
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <thread>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "hkp/key_filter.hpp"
#include "hkp/keyring.hpp"
#include "hkp/packets.hpp"
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
  // The verification cost model (hkp::verification_cost_us) against what RNP really spends on
  // forged RSA self-signatures whose hash prefixes are right: the budgets hold only if the
  // estimate is not far below.
  for (const auto& [n_bits, e_bits] : {std::pair{2048, 17}, std::pair{4096, 17}, std::pair{8192, 64},
                                       std::pair{16384, 17}}) {
    config::KeysConfig lifted;
    lifted.verify_budget_per_key = std::chrono::hours(1);
    lifted.verify_budget_per_submission = std::chrono::hours(1);
    const int sigs = 64;
    const std::string key = forged_rsa_key(n_bits, e_bits, 4, sigs / 4, 1);
    const auto t = Clock::now();
    hkp::parse_keys(key, lifted);
    const double per_sig = ms_since(t) * 1000 / sigs;
    const auto primary = hkp::split_packets(key)->at(0);
    row("RSA-" + std::to_string(n_bits) + ", " + std::to_string(e_bits) +
            "-bit exponent: per forged signature (estimate)",
        fmt(per_sig, "us") + " (" +
            std::to_string(hkp::verification_cost_us(primary.body)) + " us)");
  }
  // The same for elliptic-curve keys gpg makes, forged on their first user ID (dated just now:
  // signatures over a day ahead are dropped unread).
  Gpg maker;
  for (const char* curve : {"ed25519", "nistp256", "nistp384", "nistp521", "brainpoolP256r1",
                            "brainpoolP512r1"}) {
    const std::string address = std::string(curve) + "@bench.example";
    if (maker({"--pinentry-mode", "loopback", "--passphrase", "", "--quick-gen-key", address,
               curve, "sign,cert", "1y"})
            .exit_code != 0) {
      row(std::string(curve) + ": gpg could not make the key", "-");
      continue;
    }
    const std::string made = key_packets(maker({"--armor", "--export", address}).out);
    config::KeysConfig lifted;
    lifted.verify_budget_per_key = std::chrono::hours(1);
    lifted.verify_budget_per_submission = std::chrono::hours(1);
    const int sigs = 16;  // what one user ID may bring for verification (the per-component cap)
    const auto packets = hkp::split_packets(made);
    std::string uid;
    for (const auto& p : *packets) {
      if (p.tag == hkp::tag::user_id) {
        uid = std::string(p.body);
        break;
      }
    }
    const auto now = static_cast<std::uint32_t>(std::time(nullptr));
    std::string forged;
    for (int i = 0; i < sigs; ++i) forged += forged_signature_on(made, uid, 0x13, now - 30 + i);
    const std::string key = with_after_first_uid(made, forged);
    const auto t = Clock::now();
    const auto out = hkp::parse_keys(key, lifted);
    const double per_sig = ms_since(t) * 1000 / sigs;
    const std::string_view primary = packets->at(0).body;
    std::string dropped;
    for (const auto& [why, n] : out.dropped) dropped += (dropped.empty() ? "" : " ") + why + ":" + std::to_string(n);
    row(std::string(curve) + ": per forged signature (estimate; forgeries RNP refused)",
        fmt(per_sig, "us") + " (" + std::to_string(hkp::verification_cost_us(primary)) +
            " us; " + dropped + ")");
  }
  {
    const std::string key = worst_case_upload(pub);
    const auto t = Clock::now();
    const auto out = hkp::parse_keys(key, defaults);
    row("worst case within the defaults (" + std::to_string(key.size() / 1024) + " KiB)",
        fmt(ms_since(t)) + (out.keys.empty() ? std::string(", refused")
                                              : ", served " + std::to_string(out.keys[0].packets.size()) + " B"));
  }
}

void lookups_under_load() {
  std::puts("cached op=get while the pool verifies worst-case uploads (workers = 2):");
  TempDir dir;
  TestKeyserver ks(dir, "ks");
  Gateway gw{GatewayConfig(dir)
                 .upstreams({{"ks", ks.url()}})
                 .upstreams_table("forward_adds = \"none\"\n[keys]\nworkers = 2\n")};
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

// POST /pks/add from `source` (a loopback address: each is its own client); the status, 0 when
// no answer.
int post_from(const std::string& source, const std::string& host_port, const std::string& key) {
  const auto colon = host_port.rfind(':');
  sockaddr_in to{}, from{};
  to.sin_family = from.sin_family = AF_INET;
  to.sin_port = htons(static_cast<std::uint16_t>(std::stoi(host_port.substr(colon + 1))));
  inet_pton(AF_INET, host_port.substr(0, colon).c_str(), &to.sin_addr);
  inet_pton(AF_INET, source.c_str(), &from.sin_addr);
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return 0;
  timeval tv{120, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&from), sizeof from) != 0 ||
      ::connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof to) != 0) {
    ::close(fd);
    return 0;
  }
  const std::string req = "POST /pks/add HTTP/1.0\r\nHost: x\r\nContent-Type: application/pgp-keys"
                          "\r\nContent-Length: " + std::to_string(key.size()) + "\r\n\r\n" + key;
  for (std::size_t at = 0; at < req.size();) {
    const ssize_t n = ::send(fd, req.data() + at, req.size() - at, MSG_NOSIGNAL);
    if (n <= 0) break;
    at += static_cast<std::size_t>(n);
  }
  char head[16] = {};
  const ssize_t got = ::recv(fd, head, sizeof head - 1, 0);
  ::close(fd);
  return got >= 12 ? std::atoi(head + 9) : 0;
}

// Issue 22 item 1's figure: a normal upload and a cache miss while two clients keep uploading
// submissions built to cost the most verification the defaults allow (four keys, each an 8,192-bit
// RSA key with a 64-bit exponent and 128 forged self-signatures whose hash prefixes are right).
// `budgets` are the [keys] lines under test: the defaults, or budgets too large to matter.
void misses_and_uploads_under_costly_uploads(const std::string& label, const std::string& budgets) {
  TempDir dir;
  run({HKPGW_KEYGEN, "8", dir / "miss.asc", "miss"});
  TestKeyserver ks(dir, "ks", "server", "normal", {dir / "miss.asc"});
  Gateway gw{GatewayConfig(dir)
                 .upstreams({{"ks", ks.url()}})
                 .upstreams_table("forward_adds = \"none\"\n[keys]\nworkers = 2\n" + budgets)};
  std::string costly;
  for (int k = 0; k < 4; ++k) costly += forged_rsa_key(8192, 64, 8, 16, 7 + k);
  std::vector<std::string> plain;  // one ordinary key per upload
  for (int i = 0; i < 8; ++i) {
    const std::string file = dir / ("plain-" + std::to_string(i) + ".asc");
    run({HKPGW_KEYGEN, "1", file, "plain" + std::to_string(i)});
    plain.push_back(read_file(file));
  }
  auto one = [&](auto&& f) {
    const auto t = Clock::now();
    const int status = f();
    return std::make_pair(ms_since(t), status);
  };
  auto sample = [&](int first) {
    Stats miss, upload;
    int failures = 0;
    for (int i = first; i < first + 4; ++i) {
      auto [m, ms] = one([&] {
        return gw.get("/pks/lookup?op=get&search=miss-" + std::to_string(i) + "@miss.example").status;
      });
      miss.v.push_back(m);
      auto [u, us] = one([&] { return post_from("127.0.0.1", gw.address(), plain.at(i)); });
      upload.v.push_back(u);
      failures += (ms != 200) + (us != 200);
    }
    return std::make_tuple(miss, upload, failures);
  };
  auto [idle_miss, idle_upload, idle_failures] = sample(0);
  std::atomic<bool> stop{false};
  std::atomic<int> costly_done{0};
  std::vector<std::thread> attackers;
  for (const char* source : {"127.0.3.1", "127.0.3.2"}) {
    attackers.emplace_back([&, source] {
      const auto until = Clock::now() + std::chrono::seconds(120);  // bound, whatever happens
      while (!stop && Clock::now() < until) {
        post_from(source, gw.address(), costly);
        ++costly_done;
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  auto [busy_miss, busy_upload, busy_failures] = sample(4);
  stop = true;
  for (auto& t : attackers) t.join();
  std::printf("%s:\n", label.c_str());
  row("idle: miss max / upload max", fmt(idle_miss.pct(100)) + " / " + fmt(idle_upload.pct(100)));
  row("2 clients uploading costly keys: miss max / upload max",
      fmt(busy_miss.pct(100)) + " / " + fmt(busy_upload.pct(100)));
  row("failed requests (idle, loaded); costly uploads answered",
      std::to_string(idle_failures) + ", " + std::to_string(busy_failures) + "; " +
          std::to_string(costly_done.load()));
}

}  // namespace

int main() {
  cleaning_cost();
  lookups_under_load();
  misses_and_uploads_under_costly_uploads("verification budgets at their defaults", "");
  misses_and_uploads_under_costly_uploads(
      "verification budgets lifted (as before issue 22)",
      "verify_budget_per_key = \"1000s\"\nverify_budget_per_submission = \"1000s\"\n");
  return 0;
}
