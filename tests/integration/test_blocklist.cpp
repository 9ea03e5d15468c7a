// Cluster-wide removal: three replicas read one blocklist file; a reload of each purges the key
// from every cache, and from then on it is never fetched by fingerprint, never kept from an
// upstream's answer (key ID, address, listing), never accepted or forwarded: 404 (a blocked key
// looks like one that does not exist) and 403 for a submission. A broken list keeps the old one.
#include <catch2/catch.hpp>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <thread>

#include "support/actors.hpp"

using namespace hkpgw;
using namespace hkpgw::test;
using Catch::Matchers::Contains;

TEST_CASE("a key blocked in the shared list is gone from every replica",
          "[integration][blocklist]") {
  TempDir dir;
  TestKeyserver ks(dir, "ks", "server", "normal", {"alice.asc", "bob.asc"});
  const std::string list = dir / "blocked";
  write_file(list, "# keys removed by the operators\n");
  TempDir d1, d2, d3;
  std::vector<std::unique_ptr<Gateway>> replicas;
  for (const TempDir* d : {&d1, &d2, &d3}) {
    replicas.push_back(
        std::make_unique<Gateway>(GatewayConfig(*d)
                                      .upstreams(std::vector<UpstreamSpec>{{"ks", ks.url()}})
                                      .cache("blocklist = \"" + list + "\"\n")));
    REQUIRE(replicas.back()->started());
  }
  const std::string bob = fixture("BOB_FPR"), alice = fixture("ALICE_FPR");
  for (auto& r : replicas) REQUIRE(r->get(get_target(bob)).status == 200);
  CHECK(ks.count("gets") == 3);

  // gpg --fingerprint's spelling: groups of four, lower case is fine too.
  std::string spaced;
  for (std::size_t i = 0; i < bob.size(); i += 4) spaced += bob.substr(i, 4) + " ";
  write_file(list, "# keys removed by the operators\n" + spaced + " # abuse report 17\n");
  for (auto& r : replicas) {
    r->process().signal(SIGHUP);
    REQUIRE(r->process().wait_for("event=config_reload result=success"));
    CHECK(r->process().wait_for("event=keys_blocked purged=1 listed=1"));
  }
  const int gets = ks.count("gets");
  for (auto& r : replicas) {
    CHECK(r->get(get_target(bob)).status == 404);           // not even asked
    CHECK(r->get("/vks/v1/by-fingerprint/" + bob).status == 404);
    CHECK(r->get("/pks/v2/certs/by-vfingerprint/04" + bob).status == 404);
    CHECK(r->get(get_target(alice)).status == 200);         // the others are untouched
  }
  CHECK(ks.count("gets") == gets + 3);  // alice, once per replica
  // Asked by key ID or address, the upstream still sends it; it is dropped, never kept.
  for (auto& r : replicas) {
    CHECK(r->get("/pks/lookup?op=get&options=mr&search=0x" + bob.substr(24)).status == 404);
    CHECK(r->get("/pks/lookup?op=get&options=mr&search=bob%2Bkeys%40example.org").status == 404);
    CHECK(r->get("/pks/lookup?op=index&options=mr&search=bob%2Bkeys%40example.org").status ==
          404);
    CHECK(cached_keys(*r) == 1);  // alice only
    CHECK_THAT(r->log(), !Contains("event=upstream_key_mismatch"));  // withheld, not a lie
  }
  // Submitted: refused whole, stored nowhere, forwarded nowhere.
  const HttpResult add =
      post_add(*replicas[0], "keytext=" + percent_encode_all(read_file(data_dir() + "/bob.asc")));
  CHECK(add.status == 403);
  CHECK(add.body == "Forbidden: key " + bob +
                        " is blocked on this gateway: nothing of this submission was stored or "
                        "forwarded\n");
  CHECK(ks.count("adds") == 0);

  // A list with a broken line: the reload fails naming the line; the old list stays in force.
  write_file(list, spaced + "\nnot-a-fingerprint\n");
  replicas[0]->process().signal(SIGHUP);
  CHECK(replicas[0]->process().wait_for(list + ":2: not a fingerprint"));
  CHECK(replicas[0]->process().wait_for("event=config_reload result=failure"));
  CHECK(replicas[0]->get(get_target(bob)).status == 404);
}

TEST_CASE("a blocklist rewritten in place while a reload reads it is read whole",
          "[integration][blocklist]") {
  TempDir dir;
  TestKeyserver ks(dir, "ks", "server", "normal", {});
  const std::string list = dir / "blocked";
  // 2,000 other keys, then bob's: the partial list a reader can catch has no bob.
  std::string others;
  for (int i = 0; i < 2000; ++i) {
    char line[42];
    std::snprintf(line, sizeof line, "%040X\n", i + 1);
    others += line;
  }
  const std::string bob = fixture("BOB_FPR");
  write_file(list, others);
  Gateway gw{GatewayConfig(dir)
                 .upstreams({{"ks", ks.url()}})
                 .cache("blocklist = \"" + list + "\"\n")
                 .upstreams_table("forward_adds = \"none\"\n")};
  REQUIRE(gw.started());
  // The operator's editor rewrites it in place: truncated, the first part written, then (a
  // moment later) the rest with bob's line. A reload comes in between.
  {
    std::ofstream out(list, std::ios::trunc);
    out << others;
    out.flush();
    gw.process().signal(SIGHUP);
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    out << bob << "\n";
  }
  REQUIRE(gw.process().wait_for("event=config_reload result=success"));
  const HttpResult add =
      post_add(gw, "keytext=" + percent_encode_all(read_file(data_dir() + "/bob.asc")));
  CHECK(add.status == 403);  // blocked (before: accepted, the reload had read 2,000 lines)
  CHECK(cached_keys(gw) == 0);
}
