// The PROXY protocol header (HAProxy's v1 and v2): what parses, what needs more bytes, what is
// refused, and that the header's length is exact (the client's bytes follow at once).
#include <arpa/inet.h>

#include <catch2/catch.hpp>

#include "gateway/net/http_wire.hpp"
#include "gateway/net/proxy_protocol.hpp"

using namespace hkpgw::gateway;
using Status = ProxyHeader::Status;

namespace {

std::string v2(unsigned char command, unsigned char family, const std::string& addresses) {
  std::string h("\r\n\r\n\0\r\nQUIT\n", 12);
  h += static_cast<char>(0x20 | command);
  h += static_cast<char>(family);
  h += static_cast<char>(addresses.size() >> 8);
  h += static_cast<char>(addresses.size() & 0xff);
  return h + addresses;
}

std::string ip_text(const ProxyHeader& h) {
  char buf[64];
  inet_ntop(h.family == 4 ? AF_INET : AF_INET6, h.ip, buf, sizeof buf);
  return buf;
}

}  // namespace

TEST_CASE("PROXY v1 lines", "[proxy][unit]") {
  const std::string line = "PROXY TCP4 198.51.100.7 192.0.2.1 56324 11371\r\n";
  auto h = parse_proxy_header(line + "GET / HTTP/1.1\r\n");
  REQUIRE(h.status == Status::ok);
  CHECK(h.length == line.size());
  CHECK(h.family == 4);
  CHECK(ip_text(h) == "198.51.100.7");
  CHECK(h.port == 56324);
  h = parse_proxy_header("PROXY TCP6 2001:db8::7 2001:db8::1 4000 443\r\n\x16\x03");
  REQUIRE(h.status == Status::ok);
  CHECK(h.family == 6);
  CHECK(ip_text(h) == "2001:db8::7");
  h = parse_proxy_header("PROXY UNKNOWN\r\n");
  REQUIRE(h.status == Status::ok);
  CHECK(h.family == 0);
  CHECK(h.length == 15);
  // Every prefix of a valid line needs more bytes.
  for (std::size_t n = 0; n < line.size(); ++n) {
    INFO(n);
    CHECK(parse_proxy_header(line.substr(0, n)).status == Status::incomplete);
  }
  for (const char* bad : {"GET / HTTP/1.1\r\n", "PROXY TCP4 not-an-ip 192.0.2.1 1 2\r\n",
                          "PROXY TCP4 198.51.100.7 192.0.2.1 70000 2\r\n",
                          "PROXY UDP4 198.51.100.7 192.0.2.1 1 2\r\n",
                          "PROXY TCP4 2001:db8::7 192.0.2.1 1 2\r\n",
                          "PROXY TCP4 198.51.100.7 192.0.2.1 1 2 extra\r\n",
                          "PROXY TCP4 198.51.100.7\n"}) {
    INFO(bad);
    CHECK(parse_proxy_header(bad).status == Status::invalid);
  }
  CHECK(parse_proxy_header("PROXY " + std::string(200, 'A')).status == Status::invalid);
  CHECK(parse_proxy_header("PROXY " + std::string(200, 'A')).error ==
        "PROXY v1 line longer than 107 bytes");
}

TEST_CASE("PROXY v2 headers", "[proxy][unit]") {
  // IPv4: 198.51.100.7:56324 -> 192.0.2.1:11371, then a TLV the parser skips.
  const std::string v4addr = std::string("\xc6\x33\x64\x07\xc0\x00\x02\x01\xdc\x04\x2c\x6b", 12) +
                             std::string("\x04\x00\x01\x00", 4);
  const std::string header = v2(1, 0x11, v4addr);
  auto h = parse_proxy_header(header + "\x16\x03\x01");
  REQUIRE(h.status == Status::ok);
  CHECK(h.length == header.size());
  CHECK(h.family == 4);
  CHECK(ip_text(h) == "198.51.100.7");
  CHECK(h.port == 56324);
  for (std::size_t n = 0; n < header.size(); ++n) {
    INFO(n);
    CHECK(parse_proxy_header(header.substr(0, n)).status == Status::incomplete);
  }
  std::string v6addr(36, '\0');
  v6addr[0] = '\x20';
  v6addr[1] = '\x01';
  v6addr[2] = '\x0d';
  v6addr[3] = '\xb8';
  v6addr[15] = '\x07';
  v6addr[32] = '\x0f';
  v6addr[33] = '\xa0';
  h = parse_proxy_header(v2(1, 0x21, v6addr));
  REQUIRE(h.status == Status::ok);
  CHECK(ip_text(h) == "2001:db8::7");
  CHECK(h.port == 4000);
  h = parse_proxy_header(v2(0, 0x00, ""));  // LOCAL: a health check from the balancer
  REQUIRE(h.status == Status::ok);
  CHECK(h.family == 0);
  CHECK(h.length == 16);
  CHECK(parse_proxy_header(v2(1, 0x11, std::string(8, '\0'))).status == Status::invalid);
  CHECK(parse_proxy_header(v2(2, 0x11, v4addr)).status == Status::invalid);  // no such command
  CHECK(parse_proxy_header(v2(1, 0x12, v4addr)).status == Status::invalid);  // UDP
  CHECK(parse_proxy_header(v2(1, 0x31, v4addr)).status == Status::invalid);  // AF_UNIX
  std::string v3 = header;
  v3[12] = '\x31';
  CHECK(parse_proxy_header(v3).status == Status::invalid);
  CHECK(parse_proxy_header(v2(1, 0x11, std::string(600, '\0'))).status == Status::invalid);
}

// The client address as the server records it for every accepted connection (logs, connection
// and rate limits): IPv4 text made by hand must read exactly as inet_ntop writes it.
TEST_CASE("a connection's address as text and as the per-client key", "[proxy][unit]") {
  namespace ip = boost::asio::ip;
  for (const char* text : {"0.0.0.0", "255.255.255.255", "127.0.0.1", "10.0.9.99", "100.20.3.0",
                           "192.0.2.7", "1.10.100.200"}) {
    const ip::address_v4 a = ip::make_address_v4(text);
    char expected[INET_ADDRSTRLEN];
    const auto bytes = a.to_bytes();
    REQUIRE(inet_ntop(AF_INET, bytes.data(), expected, sizeof expected) != nullptr);
    CHECK(wire::ipv4_text(bytes) == expected);
    const Peer p = wire::peer_of(ip::tcp::endpoint(a, 4711));
    CHECK(p.address == text);
    CHECK(p.client == text);
    CHECK(p.family == 4);
    CHECK(p.port == 4711);
  }
  // A dual-stack listener's IPv4 client is IPv4 in text, key and bytes.
  const Peer mapped = wire::peer_of(ip::tcp::endpoint(ip::make_address("::ffff:198.51.100.23"), 1));
  CHECK(mapped.address == "198.51.100.23");
  CHECK(mapped.client == "198.51.100.23");
  CHECK(mapped.family == 4);
  // IPv6: the address whole, the key its /64.
  const Peer v6 = wire::peer_of(ip::tcp::endpoint(ip::make_address("2001:db8:1:2:3:4:5:6"), 1));
  CHECK(v6.address == "2001:db8:1:2:3:4:5:6");
  CHECK(v6.client == "2001:db8:1:2::/64");
  CHECK(v6.family == 6);
}
