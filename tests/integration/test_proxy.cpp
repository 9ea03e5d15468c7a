// The PROXY protocol on the HKP listeners through the real binary: the client a balancer names
// is the one logs and rate limits see (v1 and v2, plain and TLS, as curl --haproxy-protocol and
// HAProxy send it); a connection from an untrusted sender or without a header is closed; a
// denied network is refused by the address the balancer names.
#include <catch2/catch.hpp>
#include <csignal>
#include <sstream>

#include "support/actors.hpp"

using namespace hkpgw;
using namespace hkpgw::test;
using Catch::Matchers::Contains;
using Catch::Matchers::StartsWith;

namespace {

std::string status_line(const std::string& raw) { return raw.substr(0, raw.find("\r\n")); }

std::string get_via(const Gateway& gw, const std::string& proxy_header, const std::string& target) {
  return raw_exchange(gw.address(), proxy_header + "GET " + target +
                                        " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
}

std::string v2_ipv4(const unsigned char (&src)[4], std::uint16_t port) {
  std::string h("\r\n\r\n\0\r\nQUIT\n\x21\x11\x00\x0c", 16);
  h.append(reinterpret_cast<const char*>(src), 4);
  h += std::string("\x7f\x00\x00\x01", 4);
  h += static_cast<char>(port >> 8);
  h += static_cast<char>(port & 0xff);
  h += std::string("\x2c\x6b", 2);
  return h;
}

}  // namespace

TEST_CASE("behind a PROXY protocol balancer the named client is the one logged and limited",
          "[integration][proxy]") {
  TempDir dir;
  TestKeyserver ks(dir, "ks", "server", "normal", {"alice.asc"});
  Gateway gw{GatewayConfig(dir)
                 .upstreams({{"ks", ks.url()}})
                 .limits("exempt = []\nkey_lookups = \"1/h\"\nkey_lookups_burst = 2\n")
                 .server("proxy_protocol = true\nproxy_trusted = [\"127.0.0.1\"]\n")};
  REQUIRE(gw.started());
  const std::string target = get_target(fixture("ALICE_FPR"));
  const std::string one = "PROXY TCP4 198.51.100.7 127.0.0.1 40001 11371\r\n";
  const std::string two = "PROXY TCP6 2001:db8:1:2::9 ::1 40002 11371\r\n";

  // Two budgets, one per named client; the balancer's own address spends none.
  CHECK(status_line(get_via(gw, one, target)) == "HTTP/1.1 200 OK");
  CHECK(status_line(get_via(gw, one, target)) == "HTTP/1.1 200 OK");
  CHECK(status_line(get_via(gw, one, target)) == "HTTP/1.1 429 Too Many Requests");
  CHECK(status_line(get_via(gw, two, target)) == "HTTP/1.1 200 OK");
  // v2, binary: a third client.
  const unsigned char third[4] = {203, 0, 113, 5};
  CHECK(status_line(get_via(gw, v2_ipv4(third, 5555), target)) == "HTTP/1.1 200 OK");
  // LOCAL / UNKNOWN (the balancer's health check): the sender's own address.
  CHECK(status_line(get_via(gw, "PROXY UNKNOWN\r\n", "/")) == "HTTP/1.1 200 OK");
  CHECK(gw.process().wait_for("peer=198.51.100.7:40001"));
  CHECK(gw.process().wait_for("peer=[2001:db8:1:2::9]:40002"));
  CHECK(gw.process().wait_for("peer=203.0.113.5:5555"));

  // curl speaks it too (v1), as an operator's check would.
  const auto curl = run({"curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
                         "--haproxy-protocol", "http://" + gw.address() + "/"});
  CHECK(curl.out == "200");

  // No header, a broken one, or a plain request: closed without an answer.
  CHECK(get_via(gw, "", "/").empty());
  CHECK(get_via(gw, "PROXY TCP4 nonsense\r\n", "/").empty());
  CHECK(gw.process().wait_for("event=proxy_header_refused"));
  CHECK(gw.get("/").status == 0);
}

TEST_CASE("a PROXY header from an untrusted sender closes the connection, and TLS follows the "
          "header",
          "[integration][proxy]") {
  TempDir dir;
  const std::string d = data_dir();
  Gateway gw{GatewayConfig(dir)
                 .upstreams_table("forward_adds = \"none\"\n")
                 .server("proxy_protocol = true\nproxy_trusted = [\"192.0.2.1\"]\n" +
                         hkps_server_lines())};
  REQUIRE(gw.started());
  CHECK(get_via(gw, "PROXY TCP4 198.51.100.7 127.0.0.1 40001 11371\r\n", "/").empty());
  CHECK(gw.process().wait_for("reason=\"not in server.proxy_trusted\""));

  TempDir dir2;
  Gateway tls{GatewayConfig(dir2)
                  .upstreams_table("forward_adds = \"none\"\n")
                  .server("proxy_protocol = true\n" + hkps_server_lines())};
  REQUIRE(tls.started());
  const std::string hkps = listening(tls, "hkps");
  REQUIRE_FALSE(hkps.empty());
  const std::string port = hkps.substr(hkps.rfind(':') + 1);
  const auto curl = run({"curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
                         "--haproxy-protocol", "--cacert", d + "/ca.pem", "--resolve",
                         "gateway.test:" + port + ":127.0.0.1", "https://gateway.test:" + port + "/"});
  INFO(curl.err);
  CHECK(curl.out == "200");
}

TEST_CASE("a denied network gets 403 on every path, by the address the balancer names, until a "
          "reload lifts it",
          "[integration][proxy][limits]") {
  TempDir dir;
  TestKeyserver ks(dir, "ks", "server", "normal", {"alice.asc"});
  Gateway gw{GatewayConfig(dir)
                 .upstreams({{"ks", ks.url()}})
                 .limits("deny = [\"198.51.100.0/24\", \"2001:db8:bad::/48\"]\n")
                 .server("proxy_protocol = true\nproxy_trusted = [\"127.0.0.1\"]\n")};
  REQUIRE(gw.started());
  const std::string target = get_target(fixture("ALICE_FPR"));
  const std::string banned = "PROXY TCP4 198.51.100.7 127.0.0.1 40001 11371\r\n";
  const std::string banned6 = "PROXY TCP6 2001:db8:bad:7::1 ::1 40002 11371\r\n";
  const std::string other = "PROXY TCP4 198.51.101.7 127.0.0.1 40003 11371\r\n";

  for (const std::string& path : {std::string("/"), target,
                                  std::string("/vks/v1/by-email/alice%40example.org"),
                                  std::string("/pks/lookup?op=stats")}) {
    INFO(path);
    const std::string answer = get_via(gw, banned, path);
    CHECK(status_line(answer) == "HTTP/1.1 403 Forbidden");
    CHECK_THAT(answer, Contains("\r\n\r\nForbidden: this gateway's operator refuses requests "
                                "from this address\n"));
  }
  CHECK(status_line(get_via(gw, banned6, target)) == "HTTP/1.1 403 Forbidden");
  CHECK(ks.count("gets") == 0);  // nothing of a denied client's reaches an upstream
  // Its neighbour, and the balancer itself (loopback, exempt), are served.
  CHECK(status_line(get_via(gw, other, target)) == "HTTP/1.1 200 OK");
  CHECK(status_line(get_via(gw, "PROXY UNKNOWN\r\n", "/")) == "HTTP/1.1 200 OK");
  CHECK(gw.process().wait_for("peer=198.51.100.7:40001"));
  CHECK(gw.process().wait_for("op=denied"));
  CHECK_THAT(http_get(gw.admin(), "/metrics").body, Contains("hkp_gateway_denied_total 5"));

  // The list lives in the config: every replica that reloads it agrees.
  std::string toml = read_file(gw.config_path());
  toml.replace(toml.find("\"198.51.100.0/24\", "), 19, "");
  write_file(gw.config_path(), toml);
  gw.process().signal(SIGHUP);
  REQUIRE(gw.process().wait_for("event=config_reload result=success"));
  CHECK(status_line(get_via(gw, banned, target)) == "HTTP/1.1 200 OK");
  CHECK(status_line(get_via(gw, banned6, target)) == "HTTP/1.1 403 Forbidden");
}
