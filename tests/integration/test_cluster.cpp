// Replicas that do not drift apart ([cluster] peers): a key submitted to one replica is pushed
// to every peer's admin listener and merged there, so a revocation sent through any replica is
// what every replica serves at once, with no upstream asked again and no second upload. Pushes
// come only from cluster.trusted networks, are verified like any submission, and a peer that
// cannot be reached keeps its pushes queued. Rate-limit budgets are the cluster's: what a client
// spends at one replica is charged at the others.
#include <catch2/catch.hpp>
#include <csignal>

#include "support/actors.hpp"

using namespace hkpgw;
using namespace hkpgw::test;
using Catch::Matchers::Contains;

namespace {

bool revoked_on(const Gateway& gw, const std::string& fpr) {
  return gw.get(index_target(fpr)).body.find(":r\n") != std::string::npos;
}

}  // namespace

TEST_CASE("a revocation sent to one replica is served by every replica at once",
          "[integration][cluster]") {
  TempDir dir;
  TestKeyserver ks(dir, "ks", "server", "normal", {"carol-unrevoked.asc"});
  TempDir d1, d2, d3;
  std::vector<std::unique_ptr<Gateway>> replicas;
  for (const TempDir* d : {&d1, &d2, &d3}) {
    replicas.push_back(std::make_unique<Gateway>(
        GatewayConfig(*d).upstreams(std::vector<UpstreamSpec>{{"ks", ks.url()}})));
    REQUIRE(replicas.back()->started());
  }
  const std::string carol = fixture("CAROL_FPR");
  for (auto& r : replicas) {
    REQUIRE(r->get(get_target(carol)).status == 200);
    CHECK_FALSE(revoked_on(*r, carol));
  }
  CHECK(ks.count("gets") == 3);
  // One list for all (the same ConfigMap everywhere): a replica that lists itself merges its
  // own push, which changes nothing.
  std::string peers = "peers = [";
  for (auto& r : replicas) peers += "\"" + r->admin() + "\", ";
  peers += "]\n";
  for (auto& r : replicas) set_cluster(*r, peers);

  const HttpResult sent = post_add(
      *replicas[0], "keytext=" + percent_encode_all(read_file(data_dir() + "/carol-revocation.asc")));
  CHECK(sent.status == 200);
  CHECK(sent.body == carol + ": updated; forwarded to ks\n");
  for (auto& r : replicas) {
    CHECK(eventually([&] { return revoked_on(*r, carol); }));
  }
  CHECK(ks.count("gets") == 3);  // no replica asked the upstream: the push brought it
  CHECK(ks.count("adds") == 1);  // and only the replica the client used forwarded it
  CHECK(replicas[0]->process().wait_for("event=key_added"));
  CHECK_THAT(replicas[0]->log(), Contains("replicas=3"));
  for (int i = 1; i < 3; ++i) {
    CHECK(replicas[i]->process().wait_for("event=key_merged_from_replica"));
    CHECK(replicas[i]->process().wait_for("status=updated"));
  }
  CHECK(eventually([&] {
    return http_get(replicas[0]->admin(), "/metrics")
               .body.find("hkp_gateway_cluster_pushes_total{result=\"delivered\"} 3") !=
           std::string::npos;
  }));
  // gpg through another replica sees the revocation.
  Gpg user;
  const auto got = user({"--recv-keys", carol}, replicas[2]->hkp_url());
  INFO(got.err);
  CHECK(got.exit_code == 0);
  CHECK_THAT(user({"--list-keys", carol}).out, Contains("revoked"));

  // A new key submitted to the second replica: the others hold it without ever fetching it.
  const std::string erin = fixture("ERIN_FPR");
  CHECK(post_add(*replicas[1], "keytext=" + percent_encode_all(read_file(data_dir() + "/erin.asc")))
            .status == 200);
  for (int i : {0, 2}) {
    CHECK(replicas[i]->process().wait_for("fingerprint=" + erin + " status=added"));
  }
  for (auto& r : replicas) CHECK(r->get(index_target(erin)).status == 200);
  CHECK(ks.count("gets") == 3);
}

TEST_CASE("pushes come only from cluster.trusted, hold up like submissions, and wait for a peer "
          "that is down",
          "[integration][cluster]") {
  TempDir dir;
  TestKeyserver ks(dir, "ks", "server", "normal", {"alice.asc"});
  TempDir d1, d2;
  Gateway a{
      GatewayConfig(d1).upstreams({{"ks", ks.url()}}).upstreams_table("forward_adds = \"none\"\n")};
  Gateway b{
      GatewayConfig(d2).upstreams({{"ks", ks.url()}}).upstreams_table("forward_adds = \"none\"\n")};
  REQUIRE(a.started());
  REQUIRE(b.started());
  const std::string key = read_file(data_dir() + "/erin.asc");
  const std::vector<std::string> pgp = {"Content-Type: application/pgp-keys"};

  // With no peers, a gateway is in no cluster: nobody may push, loopback included.
  const HttpResult alone = http_request(b.admin(), "POST", "/cluster/keys", key, pgp);
  CHECK(alone.status == 403);
  CHECK(alone.body == "Forbidden: this gateway has no [cluster] peers, so nobody may push keys "
                      "here\n");
  CHECK(http_request(b.admin(), "POST", "/cluster/spends", "hkpgw-spends 1 0123456789abcdef\n")
            .status == 403);
  // Loopback is trusted by default; anything else has to be listed. b lists itself, as every
  // replica of a StatefulSet does with one shared list.
  const std::string self = "peers = [\"" + b.admin() + "\"]\n";
  set_cluster(b, self + "trusted = [\"192.0.2.0/24\"]\n");
  const HttpResult untrusted = http_request(b.admin(), "POST", "/cluster/keys", key, pgp);
  CHECK(untrusted.status == 403);
  CHECK(untrusted.body ==
        "Forbidden: 127.0.0.1 is not in cluster.trusted, so it may not push keys\n");
  CHECK(cached_keys(b) == 0);
  set_cluster(b, self + "trusted = [\"127.0.0.1\"]\n");

  // A trusted address is not enough: a push must carry the cluster's HMAC (issue 22: anything
  // in cluster.trusted could push 40 keys where /pks/add allows 5, or charge any client).
  const HttpResult unsigned_push = http_request(b.admin(), "POST", "/cluster/keys", key, pgp);
  CHECK(unsigned_push.status == 401);
  CHECK(unsigned_push.body == "Unauthorized: not a replica of this cluster: the request carries "
                              "no HKPGW-HMAC authorization\n");
  const auto as_peer = [](const std::string& body) {
    return peer_headers("/cluster/keys", body, "application/pgp-keys");
  };
  const HttpResult other_secret = http_request(
      b.admin(), "POST", "/cluster/keys", key,
      peer_headers("/cluster/keys", key, "application/pgp-keys",
                   data_dir() + "/other-cluster.secret"));
  CHECK(other_secret.status == 401);
  CHECK_THAT(other_secret.body, Contains("wrong MAC"));
  const auto signed_for_another_key = as_peer(read_file(data_dir() + "/alice.asc"));
  CHECK(http_request(b.admin(), "POST", "/cluster/keys", key, signed_for_another_key).status ==
        401);
  CHECK(b.process().wait_for("event=cluster_request_refused peer=127.0.0.1"));
  CHECK(cached_keys(b) == 0);

  // Verified like any submission: junk and secret keys are refused, nothing stored.
  const HttpResult junk =
      http_request(b.admin(), "POST", "/cluster/keys", "not a key", as_peer("not a key"));
  CHECK(junk.status == 400);
  CHECK_THAT(junk.body, Contains("OpenPGP"));
  const std::string secret_key = read_file(data_dir() + "/alice-secret.asc");
  const HttpResult secret =
      http_request(b.admin(), "POST", "/cluster/keys", secret_key, as_peer(secret_key));
  CHECK(secret.status == 422);
  CHECK_THAT(secret.body, Contains("secret key material"));
  CHECK(http_request(b.admin(), "GET", "/cluster/keys").status == 401);  // not a peer's either
  CHECK(cached_keys(b) == 0);
  const auto signed_push = as_peer(key);
  const HttpResult merged = http_request(b.admin(), "POST", "/cluster/keys", key, signed_push);
  CHECK(merged.status == 200);
  CHECK(merged.body == fixture("ERIN_FPR") + " added\n");
  CHECK(cached_keys(b) == 1);
  // The same signed request again is a replay.
  const HttpResult replayed = http_request(b.admin(), "POST", "/cluster/keys", key, signed_push);
  CHECK(replayed.status == 401);
  CHECK_THAT(replayed.body, Contains("a replay"));
  CHECK(ks.count("adds") == 0);  // a push is never forwarded

  // A peer that does not answer: the push stays queued and is retried, the client is not kept.
  const std::string nobody = "127.0.0.1:" + std::to_string(free_loopback_port());
  set_cluster(a, "peers = [\"" + nobody + "\"]\n");
  CHECK(post_add(a, "keytext=" + percent_encode_all(key)).status == 200);
  CHECK(a.process().wait_for("event=key_push_failed replica=" + nobody));
  CHECK(eventually([&] {
    return http_get(a.admin(), "/metrics")
               .body.find("hkp_gateway_cluster_pushes_total{result=\"failed\"}") !=
           std::string::npos;
  }));
  CHECK_THAT(a.get("/pks/lookup?op=stats&options=mr").body, Contains("\"forward_queue\":1"));

  // A "peer" that answers, but refuses (here b's HKP listener, which has no /cluster/keys): the
  // push is logged once and dropped, not retried for ever.
  set_cluster(a, "peers = [\"" + b.address() + "\"]\n");
  CHECK(post_add(a, "keytext=" + percent_encode_all(read_file(data_dir() + "/alice.asc")))
            .status == 200);
  CHECK(a.process().wait_for("event=key_push_refused replica=" + b.address()));
  CHECK(eventually([&] {
    return http_get(a.admin(), "/metrics")
               .body.find("hkp_gateway_cluster_pushes_total{result=\"refused\"} 1") !=
           std::string::npos;
  }));
  // The push to the peer that left the config is dropped with it; the refused one is gone.
  CHECK(eventually([&] {
    return a.get("/pks/lookup?op=stats&options=mr").body.find("\"forward_queue\":0") !=
           std::string::npos;
  }));
}

TEST_CASE("spend reports: only a replica holding the secret charges a client, once, and only a "
          "client the limiter could have", "[integration][cluster][limits]") {
  TempDir dir;
  const std::string limits =
      "forward_adds = \"none\"\n\n[limits]\nexempt = []\nsearches = \"1/h\"\nsearches_burst = 4\n";
  Gateway gw{GatewayConfig(dir).upstreams_table(limits)};
  REQUIRE(gw.started());
  set_cluster(gw, "peers = [\"" + gw.admin() + "\"]\n");
  // The attack of issue 22: from a trusted address, a report that the client at 127.0.0.1 spent
  // 50 searches, replayed: 429 with Retry-After 360 and re-armed by every replay. Now refused.
  const std::string report = "hkpgw-spends 1 0123456789abcdef\n127.0.0.1 0 50 0\n";
  const HttpResult unsigned_report =
      http_request(gw.admin(), "POST", "/cluster/spends", report, {"Content-Type: text/plain"});
  CHECK(unsigned_report.status == 401);
  const auto other = peer_headers("/cluster/spends", report, "text/plain",
                                  data_dir() + "/other-cluster.secret");
  CHECK(http_request(gw.admin(), "POST", "/cluster/spends", report, other).status == 401);
  const auto search = [&gw](int i) {
    return gw.get("/pks/lookup?op=index&options=mr&search=nobody" + std::to_string(i) +
                  "%40example.org")
        .status;
  };
  CHECK(search(0) == 404);  // not charged: the client still has its searches

  // Malformed client keys are refused whole, even signed.
  for (const std::string bad : {"/", ":::::", "127.000.0.1", "::1"}) {
    const std::string body = "hkpgw-spends 1 0123456789abcdef\n" + bad + " 0 1 0\n";
    const HttpResult r = http_request(gw.admin(), "POST", "/cluster/spends", body,
                                      peer_headers("/cluster/spends", body, "text/plain"));
    CHECK(r.status == 400);
  }
  // A peer's signed report charges once; the same request again is a replay.
  const auto signed_report = peer_headers("/cluster/spends", report, "text/plain");
  CHECK(http_request(gw.admin(), "POST", "/cluster/spends", report, signed_report).status == 200);
  CHECK(search(1) == 429);
  CHECK(http_request(gw.admin(), "POST", "/cluster/spends", report, signed_report).status == 401);
}

TEST_CASE("with peers, a client's budget is the cluster's, not one per replica",
          "[integration][cluster][limits]") {
  TempDir d1, d2;
  const std::string limits =
      "forward_adds = \"none\"\n\n[limits]\nexempt = []\nsearches = \"1/h\"\nsearches_burst = 4\n";
  Gateway a{GatewayConfig(d1).upstreams_table(limits)};
  Gateway b{GatewayConfig(d2).upstreams_table(limits)};
  REQUIRE(a.started());
  REQUIRE(b.started());
  const auto search = [](const Gateway& gw, int i) {
    return gw.get("/pks/lookup?op=index&options=mr&search=nobody" + std::to_string(i) +
                  "%40example.org")
        .status;
  };
  const std::string peers = "peers = [\"" + a.admin() + "\", \"" + b.admin() + "\"]\n";
  set_cluster(a, peers);
  set_cluster(b, peers);
  // Two searches at each: on their own, each replica would leave the client two more.
  for (int i = 0; i < 2; ++i) CHECK(search(a, i) == 404);
  for (int i = 2; i < 4; ++i) CHECK(search(b, i) == 404);
  const auto received = [](const Gateway& gw) {
    const std::string m = http_get(gw.admin(), "/metrics").body;
    const std::string name = "hkp_gateway_cluster_spends_total{direction=\"received\"} ";
    const auto at = m.find(name);
    return at == std::string::npos ? 0 : std::stoi(m.substr(at + name.size()));
  };
  REQUIRE(eventually([&] { return received(a) >= 1 && received(b) >= 1; }));
  // The cluster's four are spent: both refuse, and say how long the client waits.
  const HttpResult at_a = a.get("/pks/lookup?op=index&options=mr&search=x%40example.org");
  CHECK(at_a.status == 429);
  CHECK(at_a.header("retry-after") == "3600");
  CHECK(search(b, 4) == 429);
  CHECK(b.process().wait_for("op=limited"));
}
