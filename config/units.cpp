#include "config/units.hpp"

#include <algorithm>
#include <cstring>
#include <arpa/inet.h>

#include <charconv>
#include <limits>

namespace hkpgw::config {
namespace {

bool parse_uint(std::string_view digits, std::uint64_t& out) {
  if (digits.empty()) {
    return false;
  }
  auto [ptr, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), out);
  return ec == std::errc() && ptr == digits.data() + digits.size();
}

std::string quoted(std::string_view s) { return "\"" + std::string(s) + "\""; }

}  // namespace

Parsed<Duration> parse_duration(std::string_view text) {
  std::size_t i = 0;
  while (i < text.size() && text[i] >= '0' && text[i] <= '9') {
    ++i;
  }
  std::uint64_t n = 0;
  if (!parse_uint(text.substr(0, i), n)) {
    return {"expected a duration such as \"500ms\", \"30s\", \"5m\", \"1h\" or \"7d\", got " +
            quoted(text)};
  }
  const std::string_view unit = text.substr(i);
  std::uint64_t ms_per_unit = 0;
  if (unit == "ms") {
    ms_per_unit = 1;
  } else if (unit == "s") {
    ms_per_unit = 1000;
  } else if (unit == "m") {
    ms_per_unit = 60'000;
  } else if (unit == "h") {
    ms_per_unit = 3'600'000;
  } else if (unit == "d") {
    ms_per_unit = 86'400'000;
  } else if (unit.empty() && n == 0) {
    return {Duration(0)};
  } else {
    return {"unknown duration unit in " + quoted(text) + " (use ms, s, m, h or d)"};
  }
  // Ten years is far beyond any sensible timeout or TTL and keeps all arithmetic in range.
  constexpr std::uint64_t kMaxMs = 10ULL * 365 * 86'400'000;
  if (n > kMaxMs / ms_per_unit) {
    return {"duration " + quoted(text) + " is too long (at most 3650d)"};
  }
  return {Duration(static_cast<Duration::rep>(n * ms_per_unit))};
}

Parsed<std::uint64_t> parse_size(std::string_view text) {
  std::size_t i = 0;
  while (i < text.size() && text[i] >= '0' && text[i] <= '9') {
    ++i;
  }
  std::uint64_t n = 0;
  if (!parse_uint(text.substr(0, i), n)) {
    return {"expected a size such as \"4096\", \"16KiB\", \"1MiB\" or \"1GiB\", got " + quoted(text)};
  }
  const std::string_view unit = text.substr(i);
  std::uint64_t mult = 0;
  if (unit.empty() || unit == "B") {
    mult = 1;
  } else if (unit == "KiB") {
    mult = 1ULL << 10;
  } else if (unit == "MiB") {
    mult = 1ULL << 20;
  } else if (unit == "GiB") {
    mult = 1ULL << 30;
  } else if (unit == "TiB") {
    mult = 1ULL << 40;
  } else {
    return {"unknown size unit in " + quoted(text) + " (use B, KiB, MiB, GiB or TiB)"};
  }
  if (n > std::numeric_limits<std::uint64_t>::max() / mult) {
    return {"size " + quoted(text) + " is too large"};
  }
  return {n * mult};
}

std::string ListenAddress::text() const {
  const bool v6 = host.find(':') != std::string::npos;
  return (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

namespace {

// Splits "host:port" / "[v6]:port"; port must be present when require_port is set.
Parsed<ListenAddress> split_host_port(std::string_view text, bool require_port,
                                      std::uint16_t default_port) {
  ListenAddress out;
  std::string_view rest;
  if (!text.empty() && text.front() == '[') {
    const auto close = text.find(']');
    if (close == std::string_view::npos || close == 1) {
      return {"malformed IPv6 address in " + quoted(text) + " (expected \"[::1]:port\")"};
    }
    out.host = std::string(text.substr(1, close - 1));
    rest = text.substr(close + 1);
  } else {
    const auto colon = text.rfind(':');
    if (colon != std::string_view::npos && text.find(':') != colon) {
      return {"IPv6 addresses must be bracketed: " + quoted(text)};
    }
    out.host = std::string(text.substr(0, colon));
    rest = colon == std::string_view::npos ? std::string_view() : text.substr(colon);
  }
  if (out.host.empty()) {
    return {"missing host in " + quoted(text)};
  }
  if (rest.empty()) {
    if (require_port) {
      return {"missing port in " + quoted(text) + " (expected \"host:port\")"};
    }
    out.port = default_port;
    return {out};
  }
  std::uint64_t port = 0;
  if (rest.front() != ':' || !parse_uint(rest.substr(1), port) || port > 65535) {
    return {"bad port in " + quoted(text) + " (expected 0-65535)"};
  }
  out.port = static_cast<std::uint16_t>(port);
  return {out};
}

}  // namespace

Parsed<ListenAddress> parse_listen(std::string_view text) {
  return split_host_port(text, /*require_port=*/true, 0);
}

Parsed<UpstreamUrl> parse_upstream_url(std::string_view text) {
  std::string_view rest;
  if (text.starts_with("https://")) {
    rest = text.substr(8);
  } else if (text.starts_with("hkps://")) {
    rest = text.substr(7);
  } else {
    const auto scheme_end = text.find("://");
    const std::string scheme =
        scheme_end == std::string_view::npos ? "" : std::string(text.substr(0, scheme_end));
    return {"refused " + quoted(text) + ": upstreams are HTTPS only (https:// or hkps://)" +
            (scheme.empty() ? std::string() : ", not " + scheme + "://")};
  }
  const auto slash = rest.find('/');
  const std::string_view authority = rest.substr(0, slash);
  std::string_view path = slash == std::string_view::npos ? std::string_view() : rest.substr(slash);
  if (authority.find('@') != std::string_view::npos) {
    return {"credentials in upstream URLs are not supported: " + quoted(text)};
  }
  if (path.find_first_of("?#") != std::string_view::npos) {
    return {"upstream URL must not carry a query or fragment: " + quoted(text)};
  }
  auto hp = split_host_port(authority, /*require_port=*/false, 443);
  if (!hp.ok()) {
    return {hp.error()};
  }
  if (hp.value().port == 0) {
    return {"port 0 is not valid in an upstream URL: " + quoted(text)};
  }
  while (!path.empty() && path.back() == '/') {
    path.remove_suffix(1);
  }
  return {UpstreamUrl{hp.value().host, hp.value().port, std::string(path)}};
}

bool is_public_address(int family, const unsigned char* a) {
  static const std::vector<Network> special = [] {
    std::vector<Network> v;
    for (const char* n :
         {"0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16",
          "172.16.0.0/12", "192.0.0.0/24", "192.0.2.0/24", "192.88.99.0/24", "192.168.0.0/16",
          "198.18.0.0/15", "198.51.100.0/24", "203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4",
          "::/128", "::1/128", "100::/64", "2001::/23", "2001:db8::/32", "2002::/16",
          "fc00::/7", "fe80::/10", "fec0::/10", "ff00::/8"}) {
      v.push_back(parse_network(n).value());
    }
    return v;
  }();
  if (family == 6) {
    static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF};
    static const unsigned char nat64[12] = {0, 0x64, 0xFF, 0x9B, 0, 0, 0, 0, 0, 0, 0, 0};
    if (std::equal(mapped, mapped + 12, a) || std::equal(nat64, nat64 + 12, a)) {
      return is_public_address(4, a + 12);
    }
    static const unsigned char compat[12] = {};  // ::a.b.c.d (deprecated): never public
    if (std::equal(compat, compat + 12, a)) return false;
  }
  return !any_contains(special, family, a);
}

bool valid_domain_name(std::string_view d) {
  if (d.empty() || d.size() > 253 || d.front() == '.' || d.back() == '.' ||
      d.find("..") != std::string_view::npos || d.find('.') == std::string_view::npos) {
    return false;
  }
  for (const char c : d) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.';
    if (!ok) return false;
  }
  // A top-level domain begins with a letter (punycode ones with "xn--"): "127.0.0.0x5" or
  // "0xa.0x63.0x63.0x1" would otherwise pass, and resolvers read such names as IP addresses.
  const std::string_view tld = d.substr(d.rfind('.') + 1);
  return tld.front() >= 'a' && tld.front() <= 'z' && tld != "localhost";
}

Parsed<double> parse_rate(std::string_view text) {
  if (text == "0" || text == "off") return {0.0};
  const auto slash = text.find('/');
  if (slash == std::string_view::npos) {
    return {std::string("expected a rate such as \"5/s\", \"30/min\" or \"100/h\", or \"0\"")};
  }
  double n = 0;
  const std::string_view number = text.substr(0, slash), unit = text.substr(slash + 1);
  const auto [end, ec] = std::from_chars(number.data(), number.data() + number.size(), n);
  if (ec != std::errc() || end != number.data() + number.size() || !(n > 0) || n > 1e9) {
    return {"\"" + std::string(number) + "\" is not a positive number of events"};
  }
  if (unit == "s") return {n};
  if (unit == "min") return {n / 60};
  if (unit == "h") return {n / 3600};
  return {"unknown unit \"" + std::string(unit) + "\" (s, min or h)"};
}

namespace {

// The bytes of an address literal (IPv4-mapped IPv6 folded to IPv4), or family 0.
int address_bytes(std::string_view text, unsigned char out[16]) {
  const std::string s(text);
  if (inet_pton(AF_INET, s.c_str(), out) == 1) return 4;
  if (inet_pton(AF_INET6, s.c_str(), out) != 1) return 0;
  static constexpr unsigned char kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (std::equal(kMapped, kMapped + 12, out)) {
    std::memmove(out, out + 12, 4);
    return 4;
  }
  return 6;
}

}  // namespace

Parsed<Network> parse_network(std::string_view text) {
  Network n;
  n.text = std::string(text);
  const auto slash = text.find('/');
  n.family = address_bytes(text.substr(0, slash), n.bytes);
  if (n.family == 0) return {"\"" + std::string(text) + "\" is not an IP address or network"};
  const unsigned max = n.family == 4 ? 32 : 128;
  n.prefix = max;
  if (slash != std::string_view::npos) {
    const std::string_view bits = text.substr(slash + 1);
    unsigned p = 0;
    const auto [end, ec] = std::from_chars(bits.data(), bits.data() + bits.size(), p);
    if (ec != std::errc() || end != bits.data() + bits.size() || bits.empty() || p > max) {
      return {"\"" + std::string(text) + "\": the prefix length must be 0 to " +
              std::to_string(max)};
    }
    n.prefix = p;
  }
  return {std::move(n)};
}

bool Network::contains(std::string_view address) const {
  unsigned char a[16];
  const int f = address_bytes(address, a);
  return f != 0 && contains(f, a);
}

bool Network::contains(int address_family, const unsigned char* a) const {
  if (address_family != family) return false;
  const unsigned whole = prefix / 8, rest = prefix % 8;
  if (!std::equal(bytes, bytes + whole, a)) return false;
  if (rest == 0) return true;
  const unsigned char mask = static_cast<unsigned char>(0xff << (8 - rest));
  return (bytes[whole] & mask) == (a[whole] & mask);
}

namespace {
// bench_limits: a scan of 8 networks costs more than probing 2 prefix lengths; of 2, less.
constexpr std::size_t kScanUpTo = 4;

std::uint64_t mix(std::uint64_t x) {  // splitmix64's finaliser
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}
}  // namespace

std::size_t NetworkSet::MaskedHash::operator()(const Masked& m) const noexcept {
  return static_cast<std::size_t>(mix(m.hi ^ mix(m.lo)));
}

NetworkSet::Masked NetworkSet::mask(const unsigned char* address, unsigned prefix) {
  unsigned char b[16] = {};
  const unsigned whole = prefix / 8, rest = prefix % 8;
  std::memcpy(b, address, whole);
  if (rest != 0) b[whole] = static_cast<unsigned char>(address[whole] & (0xff << (8 - rest)));
  Masked m;
  std::memcpy(&m.hi, b, 8);
  std::memcpy(&m.lo, b + 8, 8);
  return m;
}

NetworkSet::NetworkSet(const std::vector<Network>& networks) {
  if (networks.size() <= kScanUpTo) {
    few_ = networks;
    return;
  }
  for (const Network& n : networks) {
    auto g = std::find_if(groups_.begin(), groups_.end(), [&](const Group& x) {
      return x.family == n.family && x.prefix == n.prefix;
    });
    if (g == groups_.end()) g = groups_.insert(groups_.end(), Group{n.family, n.prefix, {}});
    g->networks.insert(mask(n.bytes, n.prefix));
  }
  // Longest prefixes first: a single address listed is found in the first probe.
  std::sort(groups_.begin(), groups_.end(),
            [](const Group& a, const Group& b) { return a.prefix > b.prefix; });
}

bool any_contains(const std::vector<Network>& networks, int address_family,
                  const unsigned char* address) {
  return std::any_of(networks.begin(), networks.end(), [&](const Network& n) {
    return n.contains(address_family, address);
  });
}

bool NetworkSet::contains(int address_family, const unsigned char* address) const {
  if (any_contains(few_, address_family, address)) return true;
  for (const Group& g : groups_) {
    if (g.family == address_family && g.networks.contains(mask(address, g.prefix))) {
      return true;
    }
  }
  return false;
}

}  // namespace hkpgw::config
