// The hit path that sends a prepared answer again without the handler (ReusedAnswers), for
// every GET and HEAD: HTTP/1.1 keep-alive (these tests pipeline them), HTTP/1.0 on a new
// connection as dirmngr asks, and Connection: close. What matters is that it is never wrong: the
// same bytes as the handler's answer, a fresh Age, and nothing reused once the key changed or the
// client said no-cache.
#include <algorithm>
#include <catch2/catch.hpp>
#include <csignal>
#include <sstream>

#include "hkp/armor.hpp"
#include "hkp/keyring_stream.hpp"
#include "support/actors.hpp"

using namespace hkpgw;
using namespace hkpgw::test;
using Catch::Matchers::Contains;

namespace {

// Sends the requests on one connection, pipelined (the last one closes it), and splits the
// answers by their Content-Length.
std::vector<HttpResult> keep_alive(const Gateway& gw, const std::vector<std::string>& requests) {
  std::string bytes;
  for (std::size_t i = 0; i < requests.size(); ++i) {
    bytes += requests[i] + "Host: gateway\r\n" +
             (i + 1 == requests.size() ? "Connection: close\r\n" : "") + "\r\n";
  }
  const std::string raw = raw_exchange(gw.address(), bytes);
  std::vector<HttpResult> out;
  std::size_t at = 0;
  while (at < raw.size()) {
    const auto end = raw.find("\r\n\r\n", at);
    REQUIRE(end != std::string::npos);
    HttpResult r;
    std::istringstream head(raw.substr(at, end - at));
    std::string line;
    std::getline(head, line);
    r.status = std::stoi(line.substr(9, 3));
    while (std::getline(head, line)) {
      if (!line.empty() && line.back() == '\r') line.pop_back();
      const auto colon = line.find(": ");
      std::string name = line.substr(0, colon);
      for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      r.headers[name] = line.substr(colon + 2);
    }
    const std::size_t length = std::stoul(r.header("content-length"));
    const bool head_only = requests[out.size()].starts_with("HEAD ");
    r.body = raw.substr(end + 4, head_only ? 0 : length);
    at = end + 4 + (head_only ? 0 : length);
    out.push_back(std::move(r));
  }
  return out;
}

std::string get(const std::string& target, const std::string& extra = "") {
  return "GET " + target + " HTTP/1.1\r\n" + extra;
}

double reused(const Gateway& gw) {
  const std::string m = http_get(gw.admin(), "/metrics").body;
  const std::string name = "\nhkp_gateway_answers_reused_total ";
  const auto at = m.find(name);
  REQUIRE(at != std::string::npos);
  return std::stod(m.substr(at + name.size()));
}

}  // namespace

TEST_CASE("a cached key's answer is sent again as it is, never once the key changed",
          "[integration][reuse]") {
  TempDir dir;
  TestKeyserver ks(dir, "ks", "server", "normal", {"carol-unrevoked.asc"});
  Gateway gw{GatewayConfig(dir)
                 .upstreams({{"ks", ks.url()}})
                 .upstreams_table("forward_adds = \"none\"\n")};
  REQUIRE(gw.started());
  const std::string carol = get_target(fixture("CAROL_FPR"));
  // A miss, a hit (the target seen once), a hit (now prepared), then reused: the fourth GET
  // and the HEAD. The last request closes the connection: only keep-alive takes the reuse path.
  const auto first = keep_alive(gw, {get(carol), get(carol), get(carol), get(carol),
                                     "HEAD " + carol + " HTTP/1.1\r\n", get(carol)});
  REQUIRE(first.size() == 6);
  for (const auto& r : first) CHECK(r.status == 200);
  CHECK(first[1].header("x-hkp-cache") == "hit");
  CHECK(first[2].header("x-hkp-cache") == "hit");
  CHECK(first[2].body == first[1].body);
  CHECK(first[2].body == first[0].body);
  CHECK_THAT(first[2].body, Contains("BEGIN PGP PUBLIC KEY BLOCK"));
  CHECK(first[2].header("content-type") == first[1].header("content-type"));
  CHECK(first[2].header("access-control-allow-origin") == "*");
  CHECK_FALSE(first[2].header("age").empty());
  CHECK(first[3].body == first[0].body);
  CHECK(first[4].body.empty());  // HEAD: the same head, no body
  CHECK(first[4].header("content-length") == first[2].header("content-length"));
  const double sent_again = reused(gw);
  CHECK(sent_again >= 2);  // the fourth GET and the HEAD

  // The key changes (a revocation arrives): no answer made before is sent again.
  const HttpResult r = post_add(gw, "keytext=" + percent_encode_all(read_file(data_dir() + "/carol-revocation.asc")));
  REQUIRE(r.status == 200);
  const auto after = keep_alive(gw, {get(carol), get(carol), get(carol)});
  REQUIRE(after.size() == 3);
  CHECK(after[0].body != first[0].body);
  CHECK(after[0].body.size() > first[0].body.size());
  CHECK(after[1].body == after[0].body);
  CHECK(after[2].body == after[0].body);
  CHECK(reused(gw) >= sent_again + 1);  // and the new answer is reused in its turn
}

TEST_CASE("no-cache requests never get a reused answer", "[integration][reuse]") {
  TempDir dir;
  TestKeyserver ks(dir, "ks", "server", "normal", {"carol-unrevoked.asc"});
  Gateway gw{
      GatewayConfig(dir).upstreams({{"ks", ks.url()}}).server("honor_client_no_cache = true\n")};
  REQUIRE(gw.started());
  const std::string carol = get_target(fixture("CAROL_FPR"));
  REQUIRE(keep_alive(gw, {get(carol), get(carol), get(carol), get(carol), get(carol)}).size() == 5);
  const double before = reused(gw);
  REQUIRE(before >= 1);  // an answer for this target is prepared
  const int asked = ks.lookups();
  const auto r = keep_alive(gw, {get(carol, "Cache-Control: no-cache\r\n")});
  REQUIRE(r.size() == 1);
  CHECK(r[0].status == 200);
  CHECK(r[0].header("x-hkp-cache") == "revalidated");
  CHECK(ks.lookups() == asked + 1);  // the handler ran and asked upstream
  CHECK(reused(gw) == before);
}

TEST_CASE(
    "dirmngr's HTTP/1.0 and Connection: close requests get the reused answer, as the "
    "handler would write it",
    "[integration][reuse]") {
  TempDir dir;
  TestKeyserver ks(dir, "ks", "server", "normal", {"carol-unrevoked.asc"});
  Gateway gw{GatewayConfig(dir).upstreams({{"ks", ks.url()}}).server("threads = 1\n")};
  REQUIRE(gw.started());
  const std::string carol = get_target(fixture("CAROL_FPR"));
  // As dirmngr asks: HTTP/1.0, a new connection for each request, no Connection field.
  const std::string dirmngr = "GET " + carol + " HTTP/1.0\r\nHost: gateway\r\n\r\n";
  const std::string handler_answer = raw_exchange(gw.address(), dirmngr);  // the miss
  REQUIRE(handler_answer.starts_with("HTTP/1.0 200 OK\r\n"));
  // Hits, until the answer is prepared: the second answer prepares it (one network thread here:
  // each thread keeps its own, and a new connection goes to whichever thread accepts it).
  for (int i = 0; i < 3; ++i) raw_exchange(gw.address(), dirmngr);
  const double before = reused(gw);
  std::string again;
  for (int i = 0; i < 4; ++i) again = raw_exchange(gw.address(), dirmngr);
  CHECK(reused(gw) == before + 4);
  // The same status line, fields and body, with a fresh Age, and the connection closed after it
  // (raw_exchange reads to the end).
  const auto fields = [](const std::string& raw) {
    std::vector<std::string> out;
    std::istringstream in(raw.substr(0, raw.find("\r\n\r\n")));
    for (std::string line; std::getline(in, line);) {
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (!line.starts_with("Age:") && !line.starts_with("X-HKP-Cache:")) out.push_back(line);
    }
    std::sort(out.begin(), out.end());
    return out;
  };
  CHECK(again.starts_with("HTTP/1.0 200 OK\r\n"));
  CHECK(fields(again) == fields(handler_answer));
  CHECK(again.substr(again.find("\r\n\r\n")) ==
        handler_answer.substr(handler_answer.find("\r\n\r\n")));
  CHECK_THAT(again, Contains("\r\nAge: "));

  // HTTP/1.0 asking to keep the connection, then HTTP/1.1 closing it: both reused, each told
  // what happens to the connection.
  const std::string both = raw_exchange(
      gw.address(), "GET " + carol + " HTTP/1.0\r\nHost: g\r\nConnection: keep-alive\r\n\r\n" +
                        get(carol) + "Host: g\r\nConnection: close\r\n\r\n");
  CHECK(reused(gw) == before + 6);
  CHECK(count_of(both, "HTTP/1.0 200 OK\r\n") == 1);
  CHECK(count_of(both, "HTTP/1.1 200 OK\r\n") == 1);
  CHECK(count_of(both, "\r\nConnection: keep-alive\r\n") == 1);
  CHECK(count_of(both, "\r\nConnection: close\r\n") == 1);
  CHECK(count_of(both, "-----END PGP PUBLIC KEY BLOCK-----") == 2);
}

TEST_CASE("an address's answer is reused until any key or query record changes",
          "[integration][reuse]") {
  TempDir dir;
  TestKeyserver ks(dir, "ks", "server", "normal", {"carol-unrevoked.asc"});
  Gateway gw{GatewayConfig(dir)
                 .upstreams({{"ks", ks.url()}})
                 .upstreams_table("forward_adds = \"none\"\n")};
  REQUIRE(gw.started());
  const std::string carol = "/pks/lookup?op=get&options=mr&search=carol@example.org";
  const auto first = keep_alive(gw, {get(carol), get(carol), get(carol), get(carol), get(carol)});
  REQUIRE(first.size() == 5);
  for (const auto& r : first) CHECK(r.status == 200);
  CHECK(first[3].body == first[0].body);
  const double sent_again = reused(gw);
  CHECK(sent_again >= 1);  // the fourth
  const HttpResult r =
      post_add(gw, "keytext=" + percent_encode_all(read_file(data_dir() + "/carol-revocation.asc")));
  REQUIRE(r.status == 200);
  const auto after = keep_alive(gw, {get(carol), get(carol), get(carol)});
  REQUIRE(after.size() == 3);
  CHECK(after[0].body != first[0].body);  // the revocation is in it
  CHECK(after[0].body.size() > first[0].body.size());
  CHECK(after[1].body == after[0].body);
  CHECK(reused(gw) >= sent_again + 1);
}

TEST_CASE("an address's reused answer ends when another key with that address arrives",
          "[integration][reuse]") {
  TempDir dir;
  // team.asc holds two keys sharing team@example.org: the upstream gets the first only.
  std::istringstream team(read_file(data_dir() + "/team.asc"));
  hkp::KeyringStream keys(team, 1);
  const auto first_key = keys.next(), second_key = keys.next();
  REQUIRE(first_key.has_value());
  REQUIRE(second_key.has_value());
  write_file(dir / "team1.asc", hkp::armor_public_keys(*first_key));
  TestKeyserver ks(dir, "ks", "server", "normal", {dir / "team1.asc"});
  Gateway gw{GatewayConfig(dir)
                 .upstreams({{"ks", ks.url()}})
                 .upstreams_table("forward_adds = \"none\"\n")
                 .server("threads = 1\n")};  // one thread's table: what is reused is exact
  REQUIRE(gw.started());
  const std::string team_get = "/pks/lookup?op=get&options=mr&search=team@example.org";
  const auto before = keep_alive(gw, {get(team_get), get(team_get), get(team_get), get(team_get),
                                      get(team_get)});
  REQUIRE(before.size() == 5);
  CHECK(before[3].body == before[0].body);
  // The address's listing (op=index) is reused the same way.
  const std::string team_index = "/pks/lookup?op=index&options=mr&search=team@example.org";
  const auto listed = keep_alive(gw, {get(team_index), get(team_index), get(team_index),
                                      get(team_index), get(team_index)});
  REQUIRE(listed.size() == 5);
  CHECK(listed[3].body == listed[0].body);
  CHECK(count_of(listed[3].body, "\npub:") == 1);
  const double sent_again = reused(gw);
  REQUIRE(sent_again >= 2);  // the fourth get and the fourth listing
  // The second key is uploaded: its slot is not the first key's, yet the address's answer
  // must now carry both.
  const HttpResult r =
      post_add(gw, "keytext=" + percent_encode_all(hkp::armor_public_keys(*second_key)));
  REQUIRE(r.status == 200);
  const auto after = keep_alive(gw, {get(team_get), get(team_index), get(team_get)});
  REQUIRE(after.size() == 3);
  CHECK(after[0].body != before[0].body);
  CHECK(after[0].body.size() > before[0].body.size());
  CHECK(count_of(after[1].body, "\npub:") == 2);
  // The first get and the listing after the upload went through the handler (their bodies
  // say so); the first get prepared the answer again, which the second get was sent.
  CHECK(reused(gw) == sent_again + 1);
}

TEST_CASE(
    "server.reused_answers bounds each thread's table: 0 sends nothing again, a reload "
    "turns it on",
    "[integration][reuse]") {
  TempDir dir;
  TestKeyserver ks(dir, "ks", "server", "normal", {"carol-unrevoked.asc"});
  Gateway gw{GatewayConfig(dir).upstreams({{"ks", ks.url()}}).server("reused_answers = 0\n")};
  REQUIRE(gw.started());
  const std::string carol = get_target(fixture("CAROL_FPR"));
  const auto off = keep_alive(gw, {get(carol), get(carol), get(carol), get(carol)});
  REQUIRE(off.size() == 4);
  CHECK(off[3].status == 200);
  CHECK(off[3].header("x-hkp-cache") == "hit");
  CHECK(reused(gw) == 0);  // every hit ran the handler

  std::string toml = read_file(gw.config_path());
  toml.replace(toml.find("reused_answers = 0"), 18, "reused_answers = 8");
  write_file(gw.config_path(), toml);
  gw.process().signal(SIGHUP);
  REQUIRE(gw.process().wait_for("event=config_reload result=success"));
  const auto on = keep_alive(gw, {get(carol), get(carol), get(carol), get(carol)});
  REQUIRE(on.size() == 4);
  CHECK(on[3].body == off[3].body);
  CHECK(reused(gw) == 2);  // prepared by the second answer, sent to the third and fourth
}
