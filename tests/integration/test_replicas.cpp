// Three replicas behind a real HAProxy (deploy/haproxy/haproxy.cfg, as shipped), all on
// loopback: lookups hash on what they look for, so N distinct keys cost N upstream requests for
// the cluster, not 3N; real gpg works through it; a replica killed with SIGKILL in the middle of
// a bounded load costs no client an error (HAProxy's retries absorb it) and the survivors serve
// its share; the client address reaches the replicas through the PROXY protocol.
#include <catch2/catch.hpp>
#include <csignal>
#include <map>
#include <sstream>
#include <thread>

#include "support/actors.hpp"

using namespace hkpgw;
using namespace hkpgw::test;
using Catch::Matchers::Contains;

namespace {

std::string port_of(const std::string& host_port) {
  return host_port.substr(host_port.rfind(':') + 1);
}

// A gauge or counter of /metrics without labels (-1 when absent).
long metric(const Gateway& gw, const std::string& name) {
  std::istringstream in(http_get(gw.admin(), "/metrics").body);
  for (std::string line; std::getline(in, line);) {
    if (line.starts_with(name + " ")) return std::stol(line.substr(name.size() + 1));
  }
  return -1;
}

}  // namespace

TEST_CASE("three replicas behind HAProxy: one upstream fetch per key, a replica killed costs "
          "no client an error",
          "[integration][replicas]") {
  TempDir dir;
  const auto made = run({HKPGW_KEYGEN, "60", dir / "bulk.asc", "cluster"});
  REQUIRE(made.exit_code == 0);
  std::vector<std::string> fprs;
  std::istringstream lines(made.out);
  for (std::string l; std::getline(lines, l);) {
    if (l.size() == 40) fprs.push_back(l);
  }
  REQUIRE(fprs.size() == 60);
  TestKeyserver ks(dir, "ks", "server", "normal", {dir / "bulk.asc", "alice.asc"});

  TempDir d1, d2, d3;
  const std::string proxy = "proxy_protocol = true\n";  // from HAProxy on loopback (trusted)
  std::vector<std::unique_ptr<Gateway>> replicas;
  for (const TempDir* d : {&d1, &d2, &d3}) {
    replicas.push_back(std::make_unique<Gateway>(*d, std::vector<UpstreamSpec>{{"ks", ks.url()}},
                                                 "", "", proxy));
    REQUIRE(replicas.back()->started());
  }
  const std::string front = "127.0.0.1:" + std::to_string(free_loopback_port());
  std::map<std::string, std::string> env = {{"HKPGW_BIND", front},
                                            {"HKPGW_CHECK_INTER", "200ms"}};
  for (int i = 0; i < 3; ++i) {
    env["HKPGW_R" + std::to_string(i + 1)] = replicas[i]->address();
    env["HKPGW_A" + std::to_string(i + 1)] = port_of(replicas[i]->admin());
  }
  const std::string cfg = std::string(HKPGW_SOURCE_DIR) + "/deploy/haproxy/haproxy.cfg";
  Process haproxy({"haproxy", "-db", "-f", cfg}, dir / "haproxy", env);
  REQUIRE(eventually([&] { return http_get(front, "/").status == 200; }));
  std::this_thread::sleep_for(std::chrono::milliseconds(800));  // every replica's checks up

  // Every key, by fingerprint and then by key ID written as clients write it: one fetch each.
  int errors = 0;
  for (const auto& f : fprs) {
    if (http_get(front, get_target(f)).status != 200) ++errors;
  }
  for (const auto& f : fprs) {
    std::string id = f.substr(24);
    for (char& c : id) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (http_get(front, "/pks/lookup?op=get&options=mr&search=0x" + id).status != 200) ++errors;
    if (http_get(front, "/vks/v1/by-fingerprint/" + f).status != 200) ++errors;
  }
  CHECK(errors == 0);
  CHECK(ks.count("gets") == 60);  // not 3 x 60: each key lives on one replica
  long held[3], total = 0;
  for (int i = 0; i < 3; ++i) {
    held[i] = metric(*replicas[i], "hkp_gateway_cache_keys");
    total += held[i];
    CHECK(held[i] > 5);  // the ring spreads them
  }
  CHECK(total == 60);
  // The client's address arrived through the PROXY protocol, not HAProxy's port.
  CHECK(replicas[0]->process().wait_for("peer=127.0.0.1:"));

  // Real gpg through HAProxy.
  Gpg gpg;
  const auto got = gpg({"--recv-keys", fixture("ALICE_FPR")}, "hkp://" + front);
  INFO(got.err);
  CHECK(got.exit_code == 0);

  // A bounded load (three passes over the keys) while replica 2 is killed after the first pass.
  const int gets_before = ks.count("gets");
  int load_errors = 0, done = 0;
  for (int pass = 0; pass < 3; ++pass) {
    for (const auto& f : fprs) {
      if (++done == 70) replicas[1]->process().signal(SIGKILL);  // mid-load, mid-pass
      if (http_get(front, get_target(f)).status != 200) ++load_errors;
    }
  }
  CHECK(load_errors == 0);
  // The survivors fetched the dead replica's share, once each (or twice for a key asked while
  // its place in the ring was moving), and serve it.
  const int refetched = ks.count("gets") - gets_before;
  INFO("replica 2 held " << held[1] << " keys; the survivors fetched " << refetched);
  CHECK(refetched >= held[1]);
  CHECK(refetched <= 2 * held[1]);
  CHECK(metric(*replicas[0], "hkp_gateway_cache_keys") +
            metric(*replicas[2], "hkp_gateway_cache_keys") >=
        60);
}
