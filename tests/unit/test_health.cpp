// The upstream health state machine, driven with a fake clock.
#include <catch2/catch.hpp>

#include "gateway/health.hpp"

using hkpgw::gateway::HealthState;
using Change = HealthState::Change;
using namespace std::chrono_literals;

namespace {
const HealthState::TimePoint t0 = HealthState::TimePoint{} + 1000h;
const HealthState::Thresholds three_two{3, 2};
}  // namespace

TEST_CASE("an upstream goes unhealthy after unhealthy_threshold consecutive failures",
          "[health]") {
  HealthState h;
  CHECK(h.healthy());
  CHECK(h.failure(t0, three_two, "connect refused", false) == Change::none);
  CHECK(h.failure(t0 + 1s, three_two, "timeout", true) == Change::none);
  CHECK(h.healthy());
  CHECK(h.failure(t0 + 2s, three_two, "HTTP 500", false) == Change::went_down);
  CHECK_FALSE(h.healthy());
  const auto v = h.view();
  CHECK(v.since == t0 + 2s);
  CHECK(v.last_error == "HTTP 500");
  CHECK(v.probes == 1);
  CHECK(v.probe_failures == 1);
  // Further failures change nothing and report no second transition.
  CHECK(h.failure(t0 + 3s, three_two, "HTTP 500", true) == Change::none);
}

TEST_CASE("a success in between resets the failure count", "[health]") {
  HealthState h;
  h.failure(t0, three_two, "x", false);
  h.failure(t0, three_two, "x", false);
  CHECK(h.success(t0, three_two, false) == Change::none);
  h.failure(t0, three_two, "x", false);
  h.failure(t0, three_two, "x", false);
  CHECK(h.healthy());
  CHECK(h.failure(t0, three_two, "x", false) == Change::went_down);
}

TEST_CASE("healthy_threshold consecutive successes bring it back", "[health]") {
  HealthState h;
  for (int i = 0; i < 3; ++i) h.failure(t0, three_two, "down", true);
  REQUIRE_FALSE(h.healthy());
  CHECK(h.success(t0 + 30s, three_two, true) == Change::none);
  CHECK_FALSE(h.healthy());
  CHECK(h.failure(t0 + 60s, three_two, "flapping", true) == Change::none);  // starts over
  CHECK(h.success(t0 + 90s, three_two, true) == Change::none);
  CHECK(h.success(t0 + 120s, three_two, true) == Change::came_back);
  CHECK(h.healthy());
  CHECK(h.view().since == t0 + 120s);
  CHECK(h.view().last_error.empty());
}

TEST_CASE("thresholds of one flip on the first event", "[health]") {
  HealthState h;
  const HealthState::Thresholds one_one{1, 1};
  CHECK(h.failure(t0, one_one, "x", false) == Change::went_down);
  CHECK(h.success(t0, one_one, false) == Change::came_back);
}

TEST_CASE("probes are due once per interval, spread by jitter", "[health]") {
  HealthState h;
  CHECK(h.claim_probe(t0, 30s, 0.0));  // due at once after start
  CHECK_FALSE(h.claim_probe(t0, 30s, 0.0));  // claimed: no second probe
  CHECK_FALSE(h.claim_probe(t0 + 29s, 30s, 0.0));
  CHECK(h.claim_probe(t0 + 30s, 30s, 1.0));  // next one due after 30s + 20% = 36s
  CHECK_FALSE(h.claim_probe(t0 + 30s + 35s, 30s, 0.0));
  CHECK(h.claim_probe(t0 + 30s + 36s, 30s, -1.0));  // then after 30s - 20% = 24s
  CHECK_FALSE(h.claim_probe(t0 + 66s + 23s, 30s, 0.0));
  CHECK(h.claim_probe(t0 + 66s + 24s, 30s, 0.0));
  h.make_probe_due();
  CHECK(h.claim_probe(t0 + 66s + 25s, 30s, 0.0));  // "probe now" from the admin side
}
