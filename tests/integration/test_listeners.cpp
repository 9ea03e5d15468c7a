// The listener's behaviour that no other test drove: HKPS with real gpg, IPv6, pipelined and
// absolute-form requests, client_timeout, op=vindex, and a shutdown with a request in flight.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <csignal>
#include <filesystem>
#include <future>
#include <set>
#include <thread>

#include "support/actors.hpp"

using namespace hkpgw::test;
using Catch::Matchers::Contains;

TEST_CASE("gpg fetches over the HKPS listener, verifying the gateway's certificate",
          "[integration][listeners]") {
  TempDir dir;
  TestKeyserver ks(dir, "ks");
  const std::string d = data_dir();
  Gateway gw{GatewayConfig(dir).upstreams({{"ks", ks.url()}}).server(hkps_server_lines())};
  REQUIRE(gw.started());
  const std::string hkps = listening(gw, "hkps");
  REQUIRE_FALSE(hkps.empty());
  const std::string port = hkps.substr(hkps.rfind(':') + 1);

  // dirmngr needs a dotted name: gateway.test resolves to loopback in a private mount namespace
  // (a hosts file of our own), never through DNS. It trusts the test CA through hkp-cacert.
  Gpg gpg;
  // standard-resolver: the system's, which answers gateway.test from the hosts file; dirmngr's
  // own resolver asked the machine's DNS server for its AAAA record (off loopback), per request.
  write_file(gpg.home() + "/dirmngr.conf", "hkp-cacert " + d + "/ca.pem\nstandard-resolver\n");
  write_file(dir / "hosts", read_file("/etc/hosts") + "\n127.0.0.1 gateway.test\n");
  auto in_namespace = [&](const std::string& gpg_args) {
    return run({"unshare", "-m", "sh", "-c",
                "mount --bind '" + dir / "hosts" + "' /etc/hosts && GNUPGHOME='" + gpg.home() +
                    "' gpg --batch --no-tty --no-auto-check-trustdb --keyserver "
                    "hkps://gateway.test:" + port + " " + gpg_args});
  };
  const auto got = in_namespace("--recv-keys " + fixture("ALICE_FPR"));
  INFO(got.err);
  CHECK(got.exit_code == 0);
  CHECK(gpg.fingerprints() == std::vector<std::string>{fixture("ALICE_FPR")});
  CHECK(gw.process().wait_for("cache=miss"));  // access lines come in batches
  const auto again = in_namespace("--recv-keys " + fixture("BOB_FPR"));
  INFO(again.err);
  CHECK(again.exit_code == 0);
  run({"gpgconf", "--kill", "all"}, {{"GNUPGHOME", gpg.home()}});
}

TEST_CASE("an IPv6 listener serves, and logs the peer unambiguously", "[integration][listeners]") {
  TempDir dir;
  Gateway gw{GatewayConfig(dir).server("listen = [\"127.0.0.1:0\", \"[::1]:0\"]\n")};
  REQUIRE(gw.started());
  std::string v6;
  std::istringstream in(gw.log());
  for (std::string line; std::getline(in, line);) {
    if (line.find("listener=hkp addr=[::1]:") != std::string::npos) v6 = field(line, "addr");
  }
  REQUIRE_FALSE(v6.empty());
  const std::string answer = raw_exchange(v6, "GET /pks/lookup?op=stats HTTP/1.0\r\n\r\n");
  CHECK(answer.starts_with("HTTP/1.0 200"));
  REQUIRE(gw.process().wait_for("peer=[::1]:"));
}

TEST_CASE("pipelined and absolute-form requests", "[integration][listeners]") {
  TempDir dir;
  TestKeyserver ks(dir, "ks");
  Gateway gw{GatewayConfig(dir).upstreams({{"ks", ks.url()}})};
  REQUIRE(gw.started());
  REQUIRE(gw.get(get_target(fixture("ALICE_FPR"))).status == 200);
  // Three requests in one write: three answers, in order, the last one closing.
  const std::string three =
      "GET /pks/lookup?op=stats HTTP/1.1\r\nHost: x\r\n\r\n"
      "GET " + get_target(fixture("ALICE_FPR")) + " HTTP/1.1\r\nHost: x\r\n\r\n"
      "GET /no/such/path HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
  const std::string answers = raw_exchange(gw.address(), three);
  const auto first = answers.find("HTTP/1.1 200");
  const auto second = answers.find("HTTP/1.1 200", first + 1);
  const auto third = answers.find("HTTP/1.1 404", second + 1);
  CHECK(first == 0);
  CHECK(second != std::string::npos);
  CHECK(third != std::string::npos);
  CHECK(answers.find("BEGIN PGP PUBLIC KEY BLOCK") > second);
  CHECK(answers.find("BEGIN PGP PUBLIC KEY BLOCK") < third);

  // A proxy-style absolute-form target is served as its path.
  const std::string absolute = raw_exchange(
      gw.address(), "GET http://" + gw.address() + get_target(fixture("ALICE_FPR")) +
                        " HTTP/1.1\r\nHost: " + gw.address() + "\r\nConnection: close\r\n\r\n");
  CHECK(absolute.starts_with("HTTP/1.1 200"));
  CHECK_THAT(absolute, Contains("X-HKP-Cache: hit"));

  // op=vindex: the verbose HTML listing of the cached key.
  const HttpResult vindex = gw.get("/pks/lookup?op=vindex&search=0x" + fixture("ALICE_FPR"));
  CHECK(vindex.status == 200);
  CHECK_THAT(vindex.header("content-type"), Contains("text/html"));
  CHECK_THAT(vindex.body, Contains("alice@example.org"));
}

TEST_CASE("client_timeout closes a connection that stops sending", "[integration][listeners]") {
  TempDir dir;
  Gateway gw{GatewayConfig(dir).server("client_timeout = \"1s\"\n")};
  REQUIRE(gw.started());
  const auto colon = gw.address().rfind(':');
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  timeval tv{15, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<std::uint16_t>(std::stoi(gw.address().substr(colon + 1))));
  inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
  REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  const std::string partial = "GET /pks/lookup?op=stats HTTP/1.1\r\nHost: x\r\n";  // no end
  ::send(fd, partial.data(), partial.size(), MSG_NOSIGNAL);
  char buf[256];
  const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
  const int err = errno;
  ::close(fd);
  CHECK(n == 0);           // closed by the server (not our 15 s receive timeout)
  CHECK(err != EAGAIN);
  CHECK(gw.get("/pks/lookup?op=stats").status == 200);
}

TEST_CASE("SIGTERM lets a request in flight finish, then exits 0", "[integration][listeners]") {
  TempDir dir;
  TestKeyserver ks(dir, "ks");
  ks.set_mode("normal", 1500);  // every answer takes 1.5 s
  Gateway gw{GatewayConfig(dir).upstreams({{"ks", ks.url()}})};
  REQUIRE(gw.started());
  auto inflight = std::async(std::launch::async, [&] { return gw.get(get_target(fixture("ALICE_FPR"))); });
  REQUIRE(eventually([&] { return ks.count("gets") == 1; }));
  gw.process().signal(SIGTERM);
  const HttpResult r = inflight.get();
  CHECK(r.status == 200);
  CHECK_THAT(r.body, Contains("BEGIN PGP PUBLIC KEY BLOCK"));
  CHECK(gw.process().wait() == 0);
  CHECK_THAT(gw.log(), Contains("event=shutting_down signal=SIGTERM"));
  CHECK_THAT(gw.log(), Contains("event=stopped"));
}

TEST_CASE("the gateway's threads are named for top -H, perf and ps -T", "[integration][listeners]") {
  TempDir dir;
  Gateway gw{GatewayConfig(dir).upstreams_table("[keys]\nworkers = 2\n").server("threads = 2\n")};
  REQUIRE(gw.started());
  const std::set<std::string> names = thread_names(gw.process().pid());
  INFO("threads: " << names.size());
  CHECK(names.contains("hkp-gateway"));  // the main thread keeps the process's name
  CHECK(names.contains("hkpgw-net-1"));
  CHECK(names.contains("hkpgw-writer"));
  CHECK(names.contains("hkpgw-pool-0"));
  CHECK(names.contains("hkpgw-pool-1"));
}

TEST_CASE("pin_threads puts each network thread on one CPU and leaves the others the whole set",
          "[integration][listeners]") {
  // The set this test may run on is the one the gateway inherits.
  cpu_set_t set;
  CPU_ZERO(&set);
  REQUIRE(sched_getaffinity(0, sizeof set, &set) == 0);
  std::vector<int> cpus;
  for (int c = 0; c < CPU_SETSIZE; ++c) {
    if (CPU_ISSET(c, &set)) cpus.push_back(c);
  }
  REQUIRE(!cpus.empty());
  auto list_of = [](const std::vector<int>& cs) {  // as the kernel writes it: "0-1", "0,2", "3"
    std::string out;
    for (std::size_t i = 0; i < cs.size();) {
      std::size_t j = i;
      while (j + 1 < cs.size() && cs[j + 1] == cs[j] + 1) ++j;
      if (!out.empty()) out += ',';
      out += std::to_string(cs[i]);
      if (j > i) out += '-' + std::to_string(cs[j]);
      i = j + 1;
    }
    return out;
  };
  const std::string whole = list_of(cpus);
  TempDir dir;
  SECTION("pinned") {
    Gateway gw{GatewayConfig(dir)
                   .upstreams_table("[keys]\nworkers = 2\n")
                   .server("threads = 2\npin_threads = true\n")};
    REQUIRE(gw.started());
    const auto by_name = thread_cpus(gw.process().pid());
    // The main thread runs network context 0; a second thread of that name, if any, is not one.
    CHECK(by_name.at("hkp-gateway").contains(list_of({cpus[0]})));
    CHECK(by_name.at("hkpgw-net-1") == std::set<std::string>{list_of({cpus[1 % cpus.size()]})});
    CHECK(by_name.at("hkpgw-pool-0") == std::set<std::string>{whole});
    CHECK(by_name.at("hkpgw-writer") == std::set<std::string>{whole});
    CHECK_THAT(gw.log(), Contains("pinned=true"));
    CHECK(gw.get("/pks/lookup?op=stats").status == 200);  // and it serves
  }
  SECTION("by default the kernel places them") {
    Gateway gw{GatewayConfig(dir).server("threads = 2\n")};
    REQUIRE(gw.started());
    const auto by_name = thread_cpus(gw.process().pid());
    CHECK(by_name.at("hkp-gateway") == std::set<std::string>{whole});
    CHECK(by_name.at("hkpgw-net-1") == std::set<std::string>{whole});
    CHECK_THAT(gw.log(), Contains("pinned=false"));
  }
}
