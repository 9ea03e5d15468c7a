// The PROXY protocol (HAProxy's, versions 1 and 2): the header a load balancer sends before
// the client's bytes, naming the client's address. Parsed from the bytes received so far; pure.
// Version 1: "PROXY TCP4|TCP6|UNKNOWN src dst sport dport\r\n", at most 107 bytes. Version 2:
// a 12-byte signature, version/command, family, a length, the addresses, TLVs (skipped).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace hkpgw::gateway {

struct ProxyHeader {
  enum class Status {
    incomplete,  // a valid beginning: more bytes are needed
    invalid,     // not a PROXY header, or a malformed one
    ok,
  };
  Status status = Status::incomplete;
  std::size_t length = 0;  // bytes the header takes (ok)
  // The client (ok): family 4 or 6 with the address bytes and port; 0 for LOCAL / UNKNOWN (a
  // health check from the balancer itself: the connection's own address stands).
  int family = 0;
  unsigned char ip[16] = {};
  std::uint16_t port = 0;
  std::string error;  // invalid: why, one line
};

// The most a header can need before it is known complete: v1's 107 bytes, v2's 16 plus its
// length (which is read from the first 16).
inline constexpr std::size_t kMaxProxyV1 = 107;
inline constexpr std::size_t kMaxProxyV2Length = 512;  // addresses and TLVs we accept

ProxyHeader parse_proxy_header(std::string_view received);

}  // namespace hkpgw::gateway
