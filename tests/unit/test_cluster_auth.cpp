// The HMAC between replicas (gateway/net/cluster_auth.hpp): what a request signed with the
// cluster's secret proves, and every way a request that is not a peer's is refused.
#include <catch2/catch.hpp>

#include "gateway/net/cluster_auth.hpp"

using namespace hkpgw::gateway;
using Catch::Matchers::Contains;

namespace {
const std::string kSecret = "0123456789abcdef0123456789abcdef-test";
constexpr std::uint64_t kNow = 1'800'000'000;
}  // namespace

TEST_CASE("a request signed with the cluster's secret is taken once, within the window",
          "[cluster][unit]") {
  ReplayGuard replays;
  const std::string body = "hkpgw-spends 1 0123456789abcdef\n192.0.2.7 0 2 0\n";
  const std::string nonce = random_nonce();
  REQUIRE(nonce.size() == 32);
  CHECK(random_nonce() != nonce);
  const std::string header =
      cluster_authorization(kSecret, "POST", "/cluster/spends", body, kNow, nonce);
  CHECK_THAT(header, Contains("HKPGW-HMAC t=1800000000,n=" + nonce + ",mac="));

  auto check = [&](std::string_view secret, std::string_view h, std::string_view target,
                   std::string_view b, std::uint64_t now) {
    return check_cluster_request(secret, h, "POST", target, b, now, replays);
  };
  // Every part is covered: another secret, target, body or time does not verify.
  CHECK_THAT(*check("another secret of at least thirty-two bytes", header, "/cluster/spends", body,
                    kNow),
             Contains("wrong MAC"));
  CHECK_THAT(*check(kSecret, header, "/cluster/keys", body, kNow), Contains("wrong MAC"));
  CHECK_THAT(*check(kSecret, header, "/cluster/spends", body + "192.0.2.8 0 50 0\n", kNow),
             Contains("wrong MAC"));
  const std::string forged_time =
      "HKPGW-HMAC t=1800000001,n=" + nonce + header.substr(header.find(",mac="));
  CHECK_THAT(*check(kSecret, forged_time, "/cluster/spends", body, kNow), Contains("wrong MAC"));
  // Too old, too new.
  CHECK_THAT(*check(kSecret, header, "/cluster/spends", body, kNow + 61), Contains("over 60 s"));
  CHECK_THAT(*check(kSecret, header, "/cluster/spends", body, kNow - 61), Contains("over 60 s"));
  // The right request: taken once, a replay refused.
  CHECK_FALSE(check(kSecret, header, "/cluster/spends", body, kNow + 30));
  CHECK_THAT(*check(kSecret, header, "/cluster/spends", body, kNow + 31), Contains("a replay"));
  // No secret here: nothing is taken.
  CHECK_THAT(*check("", header, "/cluster/spends", body, kNow), Contains("no cluster.secret_file"));
}

TEST_CASE("a cluster authorization of the wrong shape is refused before any MAC",
          "[cluster][unit]") {
  const std::string good = cluster_authorization(kSecret, "POST", "/cluster/keys", "", kNow,
                                                 std::string(32, 'a'));
  CHECK(parse_cluster_authorization(good));
  for (const std::string bad :
       {std::string(""), std::string("Bearer x"), std::string("HKPGW-HMAC "),
        "HKPGW-HMAC t=1,n=" + std::string(32, 'a') + ",mac=" + std::string(63, 'b'),
        "HKPGW-HMAC t=1,n=" + std::string(31, 'a') + ",mac=" + std::string(64, 'b'),
        "HKPGW-HMAC t=x,n=" + std::string(32, 'a') + ",mac=" + std::string(64, 'b'),
        "HKPGW-HMAC t=1,n=" + std::string(32, 'A') + ",mac=" + std::string(64, 'b'),
        good + ",extra=1", "HKPGW-HMAC n=" + std::string(32, 'a') + ",t=1,mac=" +
                               std::string(64, 'b')}) {
    INFO(bad);
    CHECK_FALSE(parse_cluster_authorization(bad));
  }
}

TEST_CASE("the replay guard forgets after the window and is bounded", "[cluster][unit]") {
  ReplayGuard replays;
  CHECK(replays.first_use("n1", kNow) == ReplayGuard::Use::first);
  CHECK(replays.first_use("n1", kNow + 100) == ReplayGuard::Use::replay);
  // Past twice the window the nonce is forgotten (its request's time can no longer pass).
  CHECK(replays.first_use("n1", kNow + 2 * kClusterAuthWindow + 1) == ReplayGuard::Use::first);
  ReplayGuard full;
  for (std::size_t i = 0; i < ReplayGuard::kMaxNonces; ++i) {
    REQUIRE(full.first_use(std::to_string(i), kNow) == ReplayGuard::Use::first);
  }
  CHECK(full.first_use("one more", kNow) == ReplayGuard::Use::full);
  CHECK(full.first_use("one more", kNow + 3 * kClusterAuthWindow) == ReplayGuard::Use::first);
}
