// Three replicas behind a real HAProxy (deploy/haproxy/haproxy.cfg, as shipped), all on
// loopback: lookups hash on what they look for, so N distinct keys cost N upstream requests for
// the cluster, not 3N; real gpg works through it; a replica killed with SIGKILL in the middle of
// a bounded load costs no client an error (HAProxy's retries absorb it) and the survivors serve
// its share; the client address reaches the replicas through the PROXY protocol; with [cluster]
// peers, a revocation sent through HAProxy is what every replica serves.
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

// HAProxy with the shipped configuration in front of three replicas; `front` is where clients
// connect.
std::unique_ptr<Process> balancer(const TempDir& dir,
                                  const std::vector<std::unique_ptr<Gateway>>& replicas,
                                  std::string& front) {
  front = "127.0.0.1:" + std::to_string(free_loopback_port());
  std::map<std::string, std::string> env = {{"HKPGW_BIND", front},
                                            {"HKPGW_CHECK_INTER", "200ms"}};
  for (int i = 0; i < 3; ++i) {
    env["HKPGW_R" + std::to_string(i + 1)] = replicas[i]->address();
    env["HKPGW_A" + std::to_string(i + 1)] = port_of(replicas[i]->admin());
  }
  const std::string cfg = std::string(HKPGW_SOURCE_DIR) + "/deploy/haproxy/haproxy.cfg";
  auto haproxy = std::make_unique<Process>(std::vector<std::string>{"haproxy", "-db", "-f", cfg},
                                           dir / "haproxy", env);
  const std::string at = front;
  REQUIRE(eventually([&] { return http_get(at, "/").status == 200; }));
  std::this_thread::sleep_for(std::chrono::milliseconds(800));  // every replica's checks up
  return haproxy;
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
    replicas.push_back(std::make_unique<Gateway>(
        GatewayConfig(*d).upstreams(std::vector<UpstreamSpec>{{"ks", ks.url()}}).server(proxy)));
    REQUIRE(replicas.back()->started());
  }
  std::string front;
  const auto haproxy = balancer(dir, replicas, front);

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

TEST_CASE("behind HAProxy, a revocation sent to the cluster is what every lookup then sees",
          "[integration][replicas][cluster]") {
  // The submission lands on one replica (HAProxy hashes /pks/add like any path); lookups by
  // fingerprint, key ID and address land on the replicas their hashes name, which cached the
  // key unrevoked. With [cluster] peers, every one of them serves the revocation at once. The
  // revocation is a bare one (gpg --gen-revoke output), which the replica it lands on can
  // apply only to a key it holds: it fetches it first.
  TempDir dir;
  TestKeyserver ks(dir, "ks", "server", "normal", {"carol-unrevoked.asc"});
  TempDir d1, d2, d3;
  std::vector<std::unique_ptr<Gateway>> replicas;
  for (const TempDir* d : {&d1, &d2, &d3}) {
    replicas.push_back(
        std::make_unique<Gateway>(GatewayConfig(*d)
                                      .upstreams(std::vector<UpstreamSpec>{{"ks", ks.url()}})
                                      .server("proxy_protocol = true\n")));
    REQUIRE(replicas.back()->started());
  }
  std::string peers = "peers = [";
  for (auto& r : replicas) peers += "\"" + r->admin() + "\", ";
  for (auto& r : replicas) set_cluster(*r, peers + "]\n");
  std::string front;
  const auto haproxy = balancer(dir, replicas, front);

  const std::string carol = fixture("CAROL_FPR");
  const std::vector<std::string> lookups = {
      "/pks/lookup?op=index&options=mr&search=0x" + carol,
      "/pks/lookup?op=index&options=mr&search=0x" + carol.substr(24),
      "/pks/lookup?op=index&options=mr&search=carol%40example.org",
      "/vks/v1/by-email/carol%40example.org"};
  for (const auto& l : lookups) REQUIRE(http_get(front, l).status == 200);
  const int gets = ks.count("gets");  // 1 or 2: the address may hash where the key ID does
  for (int i = 0; i < 3; ++i) {
    CHECK(http_get(front, lookups[i]).body.find(":r\n") == std::string::npos);
  }

  const std::string rev = read_file(data_dir() + "/carol-revocation.asc");
  const HttpResult sent = http_request(front, "POST", "/pks/add",
                                       "keytext=" + percent_encode_all(rev),
                                       {"Content-Type: application/x-www-form-urlencoded"});
  CHECK(sent.status == 200);
  for (int i = 0; i < 3; ++i) {
    INFO(lookups[i]);
    CHECK(eventually(
        [&] { return http_get(front, lookups[i]).body.find(":r\n") != std::string::npos; }));
  }
  // Every replica holds the revoked key, asked directly (as HAProxy would ask it: with a PROXY
  // header), whichever of them the ring names.
  for (auto& r : replicas) {
    const std::string answer = raw_exchange(
        r->address(), "PROXY UNKNOWN\r\nGET " + index_target(carol) +
                          " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    CHECK_THAT(answer, Contains(":r\n"));
  }
  // gpg through HAProxy, by address: the revoked key.
  Gpg gpg;
  const auto got = gpg({"--auto-key-locate", "clear,keyserver", "--keyserver", "hkp://" + front,
                        "--locate-keys", "carol@example.org"});
  INFO(got.err);
  CHECK_THAT(got.out + got.err, Contains("revoked"));
  // Nobody refetched: the pushes brought it. At most one fetch, by the replica the submission
  // landed on when it did not hold the key (it fetches the key to apply a bare revocation).
  CHECK(ks.count("gets") - gets <= 1);
  CHECK(ks.count("adds") == 1);     // one upload upstream for the cluster
}
