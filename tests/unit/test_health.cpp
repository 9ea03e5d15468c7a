// The upstream health state machine, driven with a fake clock.
#include <catch2/catch.hpp>

#include "gateway/upstream/health.hpp"

using hkpgw::gateway::HealthState;
using hkpgw::gateway::Outcome;
using hkpgw::gateway::UpstreamResponse;
using Change = HealthState::Change;
using Source = HealthState::Source;
using namespace std::chrono_literals;

namespace {
const HealthState::TimePoint t0 = HealthState::TimePoint{} + 1000h;

UpstreamResponse answer(Outcome o, unsigned status = 0, std::string detail = {}) {
  UpstreamResponse r;
  r.outcome = o;
  r.status = status;
  r.detail = std::move(detail);
  return r;
}
const UpstreamResponse ok = answer(Outcome::ok, 200);

}  // namespace

TEST_CASE("an upstream goes unhealthy after unhealthy_threshold consecutive failures",
          "[health]") {
  HealthState h;
  CHECK(h.healthy());
  CHECK(h.record(answer(Outcome::connect_error, 0, "connect refused"), Source::request, t0) == Change::none);
  CHECK(h.record(answer(Outcome::connect_error, 0, "timeout"), Source::probe, t0 + 1s) == Change::none);
  CHECK(h.healthy());
  CHECK(h.record(answer(Outcome::connect_error, 0, "HTTP 500"), Source::request, t0 + 2s) == Change::went_down);
  CHECK_FALSE(h.healthy());
  const auto v = h.view();
  CHECK(v.since == t0 + 2s);
  CHECK(v.last_error == "HTTP 500");
  CHECK(v.probes == 1);
  CHECK(v.probe_failures == 1);
  // Further failures change nothing and report no second transition.
  CHECK(h.record(answer(Outcome::connect_error, 0, "HTTP 500"), Source::probe, t0 + 3s) == Change::none);
}

TEST_CASE("a success in between resets the failure count", "[health]") {
  HealthState h;
  h.record(answer(Outcome::connect_error, 0, "x"), Source::request, t0);
  h.record(answer(Outcome::connect_error, 0, "x"), Source::request, t0);
  CHECK(h.record(ok, Source::request, t0) == Change::none);
  h.record(answer(Outcome::connect_error, 0, "x"), Source::request, t0);
  h.record(answer(Outcome::connect_error, 0, "x"), Source::request, t0);
  CHECK(h.healthy());
  CHECK(h.record(answer(Outcome::connect_error, 0, "x"), Source::request, t0) == Change::went_down);
}

TEST_CASE("healthy_threshold consecutive successes bring it back", "[health]") {
  HealthState h;
  for (int i = 0; i < 3; ++i) h.record(answer(Outcome::connect_error, 0, "down"), Source::probe, t0);
  REQUIRE_FALSE(h.healthy());
  CHECK(h.record(ok, Source::probe, t0 + 30s) == Change::none);
  CHECK_FALSE(h.healthy());
  CHECK(h.record(answer(Outcome::connect_error, 0, "flapping"), Source::probe, t0 + 60s) == Change::none);  // starts over
  CHECK(h.record(ok, Source::probe, t0 + 90s) == Change::none);
  CHECK(h.record(ok, Source::probe, t0 + 120s) == Change::came_back);
  CHECK(h.healthy());
  CHECK(h.view().since == t0 + 120s);
  CHECK(h.view().last_error.empty());
}

TEST_CASE("thresholds of one flip on the first event", "[health]") {
  HealthState h;
  h.set_thresholds({1, 1});
  CHECK(h.record(answer(Outcome::connect_error, 0, "x"), Source::request, t0) == Change::went_down);
  CHECK(h.record(ok, Source::request, t0) == Change::came_back);
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

TEST_CASE("what an answer says about an upstream's health", "[health]") {
  HealthState h;
  h.set_thresholds({1, 1});
  // Our own limits and withdrawals say nothing: no failure, no success.
  CHECK(h.record(answer(Outcome::busy), Source::request, t0) == Change::none);
  CHECK(h.record(answer(Outcome::cancelled), Source::request, t0) == Change::none);
  CHECK(h.view().consecutive_successes == 0);
  CHECK(h.view().consecutive_failures == 0);
  // A 404 or another 4xx is a live server.
  CHECK(h.record(answer(Outcome::not_found, 404), Source::request, t0) == Change::none);
  CHECK(h.record(answer(Outcome::http_error, 429), Source::request, t0) == Change::none);
  CHECK(h.view().consecutive_successes == 2);
  // A 5xx, a broken answer, a TLS failure or a timeout is not.
  for (const auto& bad : {answer(Outcome::http_error, 503, "HTTP 503"), answer(Outcome::bad_response),
                          answer(Outcome::tls_error), answer(Outcome::timeout)}) {
    HealthState fresh;
    fresh.set_thresholds({1, 1});
    CHECK(fresh.record(bad, Source::probe, t0) == Change::went_down);
  }
}

#include "gateway/upstream/fleet.hpp"

TEST_CASE("the panic circuit: one trial at a time, open after a failed one, closed by an answer",
          "[gateway][unit]") {
  using hkpgw::gateway::Fleet;
  Fleet fleet(hkpgw::gateway::Metrics::none(), {});
  const auto now = std::chrono::steady_clock::now();
  std::chrono::seconds retry_in{0};
  REQUIRE(fleet.panic_trial_begin(now, retry_in));        // the first miss is the trial
  CHECK_FALSE(fleet.panic_trial_begin(now, retry_in));    // others meanwhile: at once
  CHECK(retry_in == 1s);
  fleet.panic_trial_done(false, now);                     // it failed: open
  CHECK_FALSE(fleet.panic_trial_begin(now + 1s, retry_in));
  CHECK(retry_in == 4s);
  CHECK_FALSE(fleet.panic_trial_begin(now + 4900ms, retry_in));
  REQUIRE(fleet.panic_trial_begin(now + Fleet::kPanicOpenFor, retry_in));  // the next trial
  fleet.panic_trial_done(true, now + Fleet::kPanicOpenFor);               // answered: closed
  REQUIRE(fleet.panic_trial_begin(now + Fleet::kPanicOpenFor, retry_in));
  fleet.panic_trial_done(true, now + Fleet::kPanicOpenFor);
}
