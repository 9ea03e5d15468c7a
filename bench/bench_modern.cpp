// What verifying RFC 9580 keys costs (hkp/modern.hpp, OpenSSL): microseconds per signature of
// OpenPGP.js 6's keys (v4 with Ed25519, and v6), best of three rounds of 2,000, the cost of
// parsing a key with its fingerprint, and what a whole key costs the work pool (parse_keys:
// filter, verify, clean, facts) for those keys and, given its file, a classic key gpg made
// (RNP's path). Prints figures; asserts nothing.
//   bench_modern [CLASSIC.asc]   (run by `make bench` with the test data's alice.asc: gpg's
//                                 default EdDSA key with a Curve25519 subkey)
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <functional>
#include <optional>
#include <sstream>
#include <string>

#include "config/config.hpp"
#include "hkp/armor.hpp"
#include "hkp/keyring.hpp"
#include "hkp/modern.hpp"
#include "hkp/packets.hpp"

using namespace hkpgw::hkp;

namespace {

std::string read(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Microseconds per call of `f`, best of three rounds.
double per_call(const std::function<bool()>& f, int n = 2000) {
  double best = 1e18;
  for (int round = 0; round < 3; ++round) {
    const auto t0 = std::chrono::steady_clock::now();
    int ok = 0;
    for (int i = 0; i < n; ++i) ok += f() ? 1 : 0;
    const double us =
        std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count() / n;
    if (ok != n) std::printf("  (a verification failed: %d of %d)\n", n - ok, n);
    best = std::min(best, us);
  }
  return best;
}

// The self-signatures of an armored key, each timed where it stands.
void bench_key(const char* label, const std::string& armored) {
  const auto d = dearmor(armored);
  if (!d) return;
  const std::string binary = d->binary;
  const auto packets = split_packets(binary);
  if (!packets) return;
  std::optional<modern::Key> primary, subkey;
  std::string uid;
  for (const Packet& p : *packets) {
    if (p.tag == tag::public_key) primary = modern::parse_key(p.body);
    if (p.tag == tag::user_id) uid = std::string(p.body);
    if (p.tag == tag::public_subkey) subkey = modern::parse_key(p.body);
    if (p.tag != tag::signature || !primary) continue;
    const auto sig = modern::parse_signature(p.body);
    if (!sig) continue;
    const char* kind = "direct-key";
    std::function<bool()> f = [&] { return modern::verify_over_key(*primary, *sig, *primary); };
    if (subkey) {
      kind = "subkey binding";
      f = [&] { return modern::verify_subkey_binding(*primary, *sig, *subkey); };
    } else if (!uid.empty()) {
      kind = "certification";
      f = [&] { return modern::verify_certification(*primary, *sig, *primary, tag::user_id, uid); };
    }
    std::printf("%-32s v%d %-15s %7.1f us\n", label, sig->version, kind, per_call(f));
  }
  const double parse = per_call([&] { return modern::parse_key((*packets)[0].body).has_value(); });
  std::printf("%-32s parse the primary key (and its fingerprint): %.2f us\n", label, parse);
}

// A whole key through parse_keys, as the work pool runs it for an upload or an upstream answer.
void bench_parse(const char* label, const std::string& armored) {
  const hkpgw::config::KeysConfig limits;
  const auto once = parse_keys(armored, limits);
  if (once.keys.size() != 1) {
    std::printf("%-32s not one key (%zu refused)\n", label, once.rejected.size());
    return;
  }
  const double us = per_call([&] { return parse_keys(armored, limits).keys.size() == 1; }, 500);
  std::printf("%-32s v%d, whole key through parse_keys: %7.1f us\n", label,
              once.keys[0].info.version, us);
}

}  // namespace

int main(int argc, char** argv) {
  const std::string dir = std::string(HKPGW_SOURCE_DIR) + "/tests/fixtures/openpgpjs/";
  std::printf("RFC 9580 signatures verified with OpenSSL (hkp/modern.hpp), per signature "
              "(RNP's cost for classic keys: bench_hardening):\n");
  bench_key("OpenPGP.js 6 default key (v4)", read(dir + "curve25519-v4.asc"));
  bench_key("OpenPGP.js 6 v6 key", read(dir + "curve25519-v6.asc"));
  std::printf("\nWhat one key costs the work pool (filter, verification, cleaning, facts):\n");
  bench_parse("OpenPGP.js 6 default key (v4)", read(dir + "curve25519-v4.asc"));
  bench_parse("OpenPGP.js 6 v6 key", read(dir + "curve25519-v6.asc"));
  if (argc > 1) bench_parse("gpg's EdDSA key (RNP)", read(argv[1]));
  return 0;
}
