// Requests between the replicas of a cluster (POST /cluster/keys, /cluster/spends) carry an
// HMAC-SHA256 over what they ask, keyed with the secret the replicas share (cluster.secret_file):
//
//   Authorization: HKPGW-HMAC t=<unix seconds>,n=<32 hex digits>,mac=<64 hex digits>
//   mac = HMAC(secret, "hkpgw-cluster 1\n" method "\n" target "\n" t "\n" n "\n" SHA-256(body) hex)
//
// A receiver takes a request only when the MAC is right, `t` is within kClusterAuthWindow of its
// own clock, and `n` was not seen in that window (ReplayGuard): an address in cluster.trusted is
// no longer enough to charge a client's budget or push keys, and a recorded request cannot be
// sent again. Pure functions and one small guarded set; no I/O.
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace hkpgw::gateway {

inline constexpr std::string_view kClusterAuthScheme = "HKPGW-HMAC ";
inline constexpr std::uint64_t kClusterAuthWindow = 60;  // seconds either side of the clock

// The Authorization header value for a request to a peer.
std::string cluster_authorization(std::string_view secret, std::string_view method,
                                  std::string_view target, std::string_view body,
                                  std::uint64_t now, std::string_view nonce);

// 16 random bytes as 32 lower-case hex digits (OpenSSL's RAND_bytes).
std::string random_nonce();

// HMAC-SHA256 of `text` keyed with `key`, the first `bytes` bytes as lower-case hex.
std::string hmac_hex(std::string_view key, std::string_view text, std::size_t bytes = 32);

struct ClusterAuthorization {
  std::uint64_t t = 0;
  std::string nonce;
  std::string mac;  // 64 lower-case hex digits
};
// The header's parts, or nullopt when it is not an HKPGW-HMAC header of the right shape (checked
// before a body is read: no MAC is computed for a request that cannot carry one).
std::optional<ClusterAuthorization> parse_cluster_authorization(std::string_view header);

// Nonces seen within the window, so each signed request is taken once. Thread-safe; bounded:
// past kMaxNonces live entries a new request is refused (a peer sends a few a second).
class ReplayGuard {
 public:
  static constexpr std::size_t kMaxNonces = 100000;
  enum class Use { first, replay, full };
  // `first` (and remembered) when `nonce` was not seen within the window of `now`.
  Use first_use(const std::string& nonce, std::uint64_t now);

 private:
  std::mutex mutex_;
  std::unordered_map<std::string, std::uint64_t> seen_;  // nonce -> when it expires
  std::uint64_t pruned_ = 0;
};

// Why a request is not a peer's, or nullopt when it is: a right MAC, a time within the window
// and a nonce not seen before. One line, for the 401 and the log.
std::optional<std::string> check_cluster_request(std::string_view secret, std::string_view header,
                                                 std::string_view method, std::string_view target,
                                                 std::string_view body, std::uint64_t now,
                                                 ReplayGuard& replays);

}  // namespace hkpgw::gateway
