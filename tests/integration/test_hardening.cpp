// The attacks of the hardening review, each against the real binary: key poisoning through
// /pks/add, CPU exhaustion, log amplification. Each test is the attack as an outsider would send
// it, and what must hold afterwards.
#include <catch2/catch.hpp>

#include <future>
#include <sstream>
#include <thread>

#include "hkp/keyring.hpp"
#include "hkp/packets.hpp"
#include "support/actors.hpp"
#include "support/forge.hpp"

using namespace hkpgw;
using namespace hkpgw::test;
using Catch::Matchers::Contains;

namespace {

HttpResult post_key(const Gateway& gw, const std::string& packets) {
  return http_request(gw.address(), "POST", "/pks/add", packets,
                      {"Content-Type: application/pgp-keys"});
}

std::string get_target(const std::string& fpr) {
  return "/pks/lookup?op=get&options=mr&search=0x" + fpr;
}

std::size_t count_lines(const std::string& text) {
  return static_cast<std::size_t>(std::count(text.begin(), text.end(), '\n'));
}

std::string forged(int type, const std::string& issuer, int count) {
  std::string out;
  for (int i = 0; i < count; ++i) {
    out += forged_signature(type, issuer, 1700000000u + static_cast<std::uint32_t>(i));
  }
  return out;
}

}  // namespace

TEST_CASE("an unauthenticated upload of forged signatures leaves a cached key as it was",
          "[integration][hardening]") {
  TempDir dir;
  TestKeyserver ks(dir, "ks");
  Gateway gw(dir, {{"ks", ks.url()}}, "", "forward_adds = \"none\"\n");
  REQUIRE(gw.started());
  const std::string fpr = fixture("ALICE_FPR");
  const HttpResult before = gw.get(get_target(fpr));
  REQUIRE(before.status == 200);

  const std::string pub = key_packets(read_file(data_dir() + "/alice.asc"));
  const std::string me = primary_keyid(pub);
  const std::string stranger("\x00\xC0\xFF\xEE\x00\xC0\xFF\xEE", 8);
  const std::string attacks[] = {
      // The reviewed attack: 7000 certifications after the subkey (833 KB).
      with_after_first_subkey(pub, forged(0x10, stranger, 7000)),
      with_after_first_subkey(pub, forged(0x18, me, 1000)),  // forged bindings
      with_after_primary(pub, forged(0x20, me, 200)),        // forged revocations
      with_after_first_uid(pub, forged(0x13, me, 3000)),     // forged self-certifications
  };
  for (const auto& attack : attacks) {
    const HttpResult r = post_key(gw, attack);
    CHECK(r.status == 200);
    CHECK_THAT(r.body, Contains(fpr + ": unchanged"));
    const HttpResult after = gw.get(get_target(fpr));
    REQUIRE(after.status == 200);
    CHECK(after.body.size() == before.body.size());
    CHECK(after.body == before.body);
  }
}

TEST_CASE("one upload cannot write thousands of log lines", "[integration][hardening]") {
  TempDir dir;
  Gateway gw(dir, {}, "", "forward_adds = \"none\"\n");
  REQUIRE(gw.started());
  const std::string pub = key_packets(read_file(data_dir() + "/alice.asc"));
  const std::size_t lines_before = count_lines(gw.log());
  // 10,000 one-byte signature packets (30 KB) and 2,000 forged signatures RNP has to reject.
  std::string junk;
  for (int i = 0; i < 10000; ++i) junk += hkp::make_packet(hkp::tag::signature, "\x04");
  const HttpResult r =
      post_key(gw, with_after_first_uid(pub, junk + forged(0x13, primary_keyid(pub), 2000)));
  CHECK(r.status == 200);
  gw.process().wait_for("event=request", std::chrono::seconds(5));
  const std::string log = gw.log();
  // The access line, key_added, one keys_cleaned line, at most a bounded few library lines.
  CHECK(count_lines(log) - lines_before <= 30);
  CHECK_THAT(log, Contains("event=keys_cleaned upstream=upload"));
  CHECK_THAT(log, Contains("malformed_signature:10000"));
}

TEST_CASE("cached lookups are answered while the pool verifies a slow key, and a full queue is "
          "refused with 503 and Retry-After",
          "[integration][hardening]") {
  TempDir dir;
  TestKeyserver ks(dir, "ks");
  // One worker, one waiting job, and limits lifted so a made-up key costs the pool seconds.
  Gateway slow(dir, {{"ks", ks.url()}}, "",
               "forward_adds = \"none\"\n[keys]\nworkers = 1\nwork_queue = 1\nmax_subkeys = 100000\n"
               "max_key_bytes = \"64MiB\"\n",
               "max_body_bytes = \"8MiB\"\n");
  REQUIRE(slow.started());
  const std::string fpr = fixture("ALICE_FPR");
  REQUIRE(slow.get(get_target(fpr)).status == 200);  // cached now

  const std::string big =
      with_fake_subkeys(key_packets(read_file(data_dir() + "/alice-v2.asc")), 6000);
  std::vector<std::future<HttpResult>> uploads;
  for (int i = 0; i < 4; ++i) {
    uploads.push_back(std::async(std::launch::async, [&] { return post_key(slow, big); }));
  }
  // The first upload is being verified (it takes the pool seconds): a cached lookup does not
  // wait for it.
  REQUIRE(slow.process().wait_for("method=POST target=/pks/add status=503", std::chrono::seconds(20)));
  const HttpResult hit = slow.get(get_target(fpr));
  CHECK(hit.status == 200);
  CHECK(hit.header("x-hkp-cache") == "hit");
  // ...and it was answered before the slow upload was.
  CHECK(slow.log().find("method=POST target=/pks/add status=200") == std::string::npos);
  int busy = 0, done = 0;
  for (auto& u : uploads) {
    const HttpResult r = u.get();
    if (r.status == 503) {
      ++busy;
      CHECK(r.header("retry-after") == "5");
      CHECK_THAT(r.body, Contains("busy verifying other keys"));
    } else {
      ++done;
    }
  }
  CHECK(busy >= 1);  // one runs, one waits, the others are refused
  CHECK(done >= 1);
}
