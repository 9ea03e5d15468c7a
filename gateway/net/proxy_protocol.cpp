#include "gateway/net/proxy_protocol.hpp"

#include <arpa/inet.h>

#include <charconv>
#include <cstring>

namespace hkpgw::gateway {

namespace {

constexpr char kV2Signature[12] = {'\r', '\n', '\r', '\n', 0, '\r', '\n', 'Q', 'U', 'I', 'T', '\n'};

ProxyHeader invalid(std::string why) {
  ProxyHeader h;
  h.status = ProxyHeader::Status::invalid;
  h.error = std::move(why);
  return h;
}

ProxyHeader parse_v1(std::string_view in) {
  const auto end = in.find("\r\n");
  if (end == std::string_view::npos) {
    if (in.size() >= kMaxProxyV1) return invalid("PROXY v1 line longer than 107 bytes");
    if (in.find('\n') != std::string_view::npos) return invalid("PROXY v1 line without CRLF");
    return {};
  }
  if (end + 2 > kMaxProxyV1) return invalid("PROXY v1 line longer than 107 bytes");
  std::string_view line = in.substr(6, end - 6);  // after "PROXY "
  ProxyHeader h;
  h.status = ProxyHeader::Status::ok;
  h.length = end + 2;
  if (line.starts_with("UNKNOWN")) return h;
  std::string_view fields[5];
  for (auto& f : fields) {
    const auto sp = line.find(' ');
    f = line.substr(0, sp);
    line = sp == std::string_view::npos ? std::string_view() : line.substr(sp + 1);
  }
  if (!line.empty()) return invalid("PROXY v1 line with extra fields");
  const int family = fields[0] == "TCP4" ? 4 : fields[0] == "TCP6" ? 6 : 0;
  if (family == 0) return invalid("PROXY v1 protocol is neither TCP4, TCP6 nor UNKNOWN");
  const std::string src(fields[1]);
  if (inet_pton(family == 4 ? AF_INET : AF_INET6, src.c_str(), h.ip) != 1) {
    return invalid("PROXY v1 source address is not an IPv" + std::to_string(family) + " address");
  }
  unsigned port = 0;
  const auto [p, ec] = std::from_chars(fields[3].data(), fields[3].data() + fields[3].size(), port);
  if (ec != std::errc() || p != fields[3].data() + fields[3].size() || fields[3].empty() ||
      port > 65535) {
    return invalid("PROXY v1 source port is not a port");
  }
  h.family = family;
  h.port = static_cast<std::uint16_t>(port);
  return h;
}

ProxyHeader parse_v2(std::string_view in) {
  if (in.size() < 16) return {};
  const auto byte = [&](std::size_t i) { return static_cast<unsigned char>(in[i]); };
  if ((byte(12) >> 4) != 2) return invalid("PROXY v2 header of another version");
  const unsigned command = byte(12) & 0x0f;
  const std::size_t length = (std::size_t{byte(14)} << 8) | byte(15);
  if (length > kMaxProxyV2Length) return invalid("PROXY v2 header longer than 512 bytes");
  if (in.size() < 16 + length) return {};
  ProxyHeader h;
  h.status = ProxyHeader::Status::ok;
  h.length = 16 + length;
  if (command == 0) return h;  // LOCAL: the balancer itself
  if (command != 1) return invalid("PROXY v2 command is neither LOCAL nor PROXY");
  const unsigned family = byte(13) >> 4, transport = byte(13) & 0x0f;
  if (transport != 1 && family != 0) return invalid("PROXY v2 transport is not TCP");
  if (family == 1) {  // IPv4: src, dst, sport, dport
    if (length < 12) return invalid("PROXY v2 IPv4 addresses cut short");
    std::memcpy(h.ip, in.data() + 16, 4);
    h.port = static_cast<std::uint16_t>((byte(24) << 8) | byte(25));
    h.family = 4;
  } else if (family == 2) {  // IPv6
    if (length < 36) return invalid("PROXY v2 IPv6 addresses cut short");
    std::memcpy(h.ip, in.data() + 16, 16);
    h.port = static_cast<std::uint16_t>((byte(48) << 8) | byte(49));
    h.family = 6;
  } else if (family != 0) {
    return invalid("PROXY v2 family is neither IPv4 nor IPv6");
  }
  return h;  // UNSPEC: the connection's own address stands
}

}  // namespace

ProxyHeader parse_proxy_header(std::string_view in) {
  const std::size_t v2 = std::min(in.size(), sizeof kV2Signature);
  if (std::memcmp(in.data(), kV2Signature, v2) == 0 && !in.empty()) {
    return in.size() < sizeof kV2Signature ? ProxyHeader{} : parse_v2(in);
  }
  constexpr std::string_view kV1 = "PROXY ";
  const std::size_t n = std::min(in.size(), kV1.size());
  if (in.substr(0, n) != kV1.substr(0, n)) return invalid("no PROXY protocol header");
  if (in.size() < kV1.size()) return {};
  return parse_v1(in);
}

}  // namespace hkpgw::gateway
