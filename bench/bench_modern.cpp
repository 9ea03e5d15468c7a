// What verifying RFC 9580 keys costs (hkp/modern.hpp, OpenSSL): microseconds per signature of
// OpenPGP.js 6's keys (v4 with Ed25519, and v6), best of three rounds of 2,000, and the cost of
// parsing a key with its fingerprint. Prints figures; asserts nothing.
//   bench_modern           (run by `make bench`, from the source tree's fixtures)
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <optional>
#include <functional>
#include <sstream>
#include <string>

#include "hkp/armor.hpp"
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

}  // namespace

int main() {
  const std::string dir = std::string(HKPGW_SOURCE_DIR) + "/tests/fixtures/openpgpjs/";
  std::printf("RFC 9580 signatures verified with OpenSSL (hkp/modern.hpp), per signature "
              "(RNP's cost for classic keys: bench_hardening):\n");
  bench_key("OpenPGP.js 6 default key (v4)", read(dir + "curve25519-v4.asc"));
  bench_key("OpenPGP.js 6 v6 key", read(dir + "curve25519-v6.asc"));
  return 0;
}
