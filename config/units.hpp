// Pure parsers for the value syntaxes of the config file: durations ("500ms", "7d"), sizes
// ("16KiB"), listen addresses ("[::1]:11371") and upstream URLs (https:// and hkps:// only).
// No I/O, no exceptions: each returns the value or a one-line reason for the caller to place.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_set>
#include <variant>
#include <vector>

namespace hkpgw::config {

using Duration = std::chrono::milliseconds;

// Either a parsed value or the reason it could not be parsed.
template <class T>
struct Parsed {
  std::variant<T, std::string> v;
  bool ok() const { return v.index() == 0; }
  const T& value() const { return std::get<0>(v); }
  const std::string& error() const { return std::get<1>(v); }
};

// "500ms", "30s", "5m", "1h", "7d"; a bare "0" is accepted as zero.
Parsed<Duration> parse_duration(std::string_view text);

// "1048576", "512B", "16KiB", "1MiB", "1GiB" (binary units only: a "KB" is refused as ambiguous).
Parsed<std::uint64_t> parse_size(std::string_view text);

// "5/s", "30/min", "100/h": events per second; "0" (or "off") is no limit.
Parsed<double> parse_rate(std::string_view text);

// An address block in CIDR notation: "192.0.2.0/24", "2001:db8::/32", or one address ("::1").
struct Network {
  int family = 4;          // 4 or 6
  unsigned char bytes[16] = {};
  unsigned prefix = 32;    // bits
  // Whether `address` ("192.0.2.7", "2001:db8::1"; IPv4-mapped IPv6 counts as IPv4) is inside.
  bool contains(std::string_view address) const;
  // The same for an address already in bytes (family 4: the first 4 bytes).
  bool contains(int address_family, const unsigned char* address) const;
  std::string text;        // as written

  friend bool operator==(const Network&, const Network&) = default;
};
Parsed<Network> parse_network(std::string_view text);
// Whether any of `networks` holds the address (bytes, as Network::contains takes them): a scan,
// for the short lists (trusted senders); NetworkSet below for lists of any length.
bool any_contains(const std::vector<Network>& networks, int address_family,
                  const unsigned char* address);

// Whether an address (bytes, as Network::contains takes them) is one of the public internet's:
// not loopback, private (RFC 1918, fc00::/7), link-local, shared (100.64/10), documentation,
// benchmarking, multicast, reserved or unspecified; IPv4-mapped and NAT64 (64:ff9b::/96)
// addresses are judged by the IPv4 address inside. What a name from outside may make the
// gateway connect to (WKD).
bool is_public_address(int address_family, const unsigned char* address);

// Whether an address is inside any of a list of networks, at a cost that does not grow with the
// list: one hash probe per distinct prefix length the list uses (a deny list of 100,000
// networks in /24s and /64s is two probes). A short list is scanned, which is cheaper still.
class NetworkSet {
 public:
  NetworkSet() = default;
  explicit NetworkSet(const std::vector<Network>& networks);
  bool contains(int address_family, const unsigned char* address) const;
  bool empty() const { return few_.empty() && groups_.empty(); }

 private:
  struct Masked {
    std::uint64_t hi = 0, lo = 0;
    bool operator==(const Masked&) const = default;
  };
  struct MaskedHash {
    std::size_t operator()(const Masked& m) const noexcept;
  };
  struct Group {  // the networks of one family and prefix length, by their masked bytes
    int family;
    unsigned prefix;
    std::unordered_set<Masked, MaskedHash> networks;
  };
  // The first `prefix` bits of an address (4 or 16 bytes), the rest zero.
  static Masked mask(const unsigned char* address, unsigned prefix);
  std::vector<Network> few_;   // a short list, scanned
  std::vector<Group> groups_;  // a long one, probed
};

struct ListenAddress {
  std::string host;  // without brackets for IPv6
  std::uint16_t port = 0;
  std::string text() const;  // back to "host:port" / "[v6]:port"

  friend bool operator==(const ListenAddress&, const ListenAddress&) = default;
};

// "127.0.0.1:11371", "[::1]:11371", "localhost:8080". Port 0 means "any free port".
Parsed<ListenAddress> parse_listen(std::string_view text);

struct UpstreamUrl {
  std::string host;         // as written (no brackets), used for SNI and certificate checks
  std::uint16_t port = 443;
  std::string base_path;    // "" or a prefix such as "/keyserver" without trailing slash

  friend bool operator==(const UpstreamUrl&, const UpstreamUrl&) = default;
};

// https://host[:port][/path] or hkps://host[:port][/path]. Anything else, http:// and hkp://
// included, is refused: upstream traffic is encrypted and authenticated or it does not happen.
Parsed<UpstreamUrl> parse_upstream_url(std::string_view text);

// A DNS name the gateway may connect to for a name taken from input (a WKD address's domain):
// lower-case labels of [a-z0-9-], at least two of them, at most 253 characters, the last label
// not all digits and not "localhost" (no IP literal, no single-label intranet name).
bool valid_domain_name(std::string_view d);

}  // namespace hkpgw::config
