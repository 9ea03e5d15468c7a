// The lookup policy in process: a LookupService over a real LMDB cache in a temporary directory,
// the real fleet and work pool, a fake upstream and a clock the test moves. Every cell of the
// freshness matrix (ARCHITECTURE.md, "Life of a lookup"): miss, hit, stale (and the background
// revalidation it starts), revalidated, negative, every upstream failing (503, 504, stale within
// stale_if_error), the lookup policy's refusal, a listing; and each front's rendering of the
// same outcome.
#include <catch2/catch.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

#include "gateway/http/formats.hpp"
#include "gateway/observe/clock.hpp"
#include "gateway/service/lookup_service.hpp"
#include "gateway/service/work_pool.hpp"
#include "hkp/armor.hpp"
#include "support/fake_upstream.hpp"
#include "support/harness.hpp"

using namespace hkpgw;
using namespace hkpgw::gateway;
namespace asio = boost::asio;
using R = LookupOutcome::Result;

namespace {

// The services of one gateway, in process: what App::run wires, minus the listeners.
struct InProcess {
  test::TempDir dir;
  asio::io_context io;
  std::int64_t now = unix_now();
  AnswerCache answers;
  cache::Store store;
  Fleet fleet;
  WorkPool pool{1, 64};
  CleaningTally tally;
  std::shared_ptr<test::FakeUpstream> upstream = std::make_shared<test::FakeUpstream>("fake");
  LookupService lookups;
  std::shared_ptr<const Snapshot> snap;

  InProcess()
      : store(options(dir, answers)),
        lookups(ServiceDeps{store, fleet, pool, [this] { return now; }, Metrics::none(), tally,
                            answers},
                io.get_executor()) {
    auto cfg = config::defaults();
    config::UpstreamConfig u;
    u.name = "fake";
    u.url = "https://fake.invalid";
    cfg.upstreams.list = {u};
    cfg.upstreams.default_name = "fake";
    cfg.upstreams.embedded_list = false;
    auto s = std::make_shared<Snapshot>();
    s->config = std::make_shared<const config::Config>(std::move(cfg));
    s->upstreams = {upstream};
    snap = std::move(s);
  }

  static cache::StoreOptions options(const test::TempDir& dir, AnswerCache& answers) {
    cache::StoreOptions o(dir.path() + "/cache", 64 << 20);
    o.on_commit = [&answers](const cache::Committed& changed) { answers.forget(changed); };
    return o;
  }

  // One lookup, run to its end, and everything it started (a background revalidation, a
  // "not found" being committed) too.
  LookupOutcome lookup(const std::string& query) {
    auto parsed = hkp::parse_lookup(query);
    REQUIRE(parsed);
    auto f = asio::co_spawn(io, lookups.lookup(*parsed, false, snap), asio::use_future);
    io.restart();
    io.run();
    return f.get();
  }
};

std::string get(const std::string& fpr) { return "op=get&options=mr&search=0x" + fpr; }

}  // namespace

TEST_CASE("the freshness matrix: miss, hit, stale, revalidated", "[lookup-matrix][unit]") {
  InProcess gw;
  const std::string alice = test::fixture("ALICE_FPR");
  gw.upstream->hold(alice, test::read_file(test::data_dir() + "/alice.asc"));
  const auto& c = gw.snap->config->cache;
  const std::int64_t fresh = c.fresh_for.count() / 1000;
  const std::int64_t swr = c.stale_while_revalidate.count() / 1000;

  LookupOutcome miss = gw.lookup(get(alice));
  CHECK(miss.result == R::keys);
  CHECK(miss.cache == CacheResult::miss);
  CHECK(miss.upstream == "fake");
  REQUIRE(miss.keys.size() == 1);
  CHECK(miss.keys.front().id.hex() == alice);
  CHECK(gw.upstream->asked() == 1);

  LookupOutcome hit = gw.lookup(get(alice));
  CHECK(hit.result == R::keys);
  CHECK(hit.cache == CacheResult::hit);
  CHECK(hit.age == 0);
  CHECK(hit.reuse != nullptr);  // a get by fingerprint may be sent again as it is
  CHECK(hit.keys.front().binary() == miss.keys.front().binary());
  CHECK(gw.upstream->asked() == 1);  // the cache answered

  gw.now += fresh + 10;  // past fresh_for, within stale_while_revalidate
  LookupOutcome stale = gw.lookup(get(alice));
  CHECK(stale.result == R::keys);
  CHECK(stale.cache == CacheResult::stale);
  CHECK(stale.age == fresh + 10);
  CHECK(stale.reuse == nullptr);
  CHECK(gw.upstream->asked() == 2);  // the background revalidation asked
  CHECK(gw.lookup(get(alice)).cache == CacheResult::hit);  // and confirmed the copy

  gw.now += fresh + swr + 10;  // past both: asked before answering
  LookupOutcome revalidated = gw.lookup(get(alice));
  CHECK(revalidated.cache == CacheResult::revalidated);
  CHECK(revalidated.age == 0);
  CHECK(gw.upstream->asked() == 3);
}

TEST_CASE("the freshness matrix: not found, then remembered as negative", "[lookup-matrix][unit]") {
  InProcess gw;
  const std::string nobody = "0123456789ABCDEF0123456789ABCDEF01234567";
  LookupOutcome first = gw.lookup(get(nobody));
  CHECK(first.result == R::not_found);
  CHECK(first.problem.status == 404);
  CHECK_THAT(first.problem.message(), Catch::Contains("No keys found"));
  CHECK(gw.upstream->asked() == 1);

  LookupOutcome again = gw.lookup(get(nobody));
  CHECK(again.result == R::not_found);
  CHECK(again.cache == CacheResult::negative);
  CHECK(gw.upstream->asked() == 1);  // remembered: not asked again within negative_ttl

  gw.now += gw.snap->config->cache.negative_ttl.count() / 1000 + 1;
  CHECK(gw.lookup(get(nobody)).cache == CacheResult::miss);
  CHECK(gw.upstream->asked() == 2);
}

TEST_CASE("the freshness matrix: every upstream failing", "[lookup-matrix][unit]") {
  InProcess gw;
  const std::string alice = test::fixture("ALICE_FPR");
  const std::string bob = test::fixture("BOB_FPR");
  gw.upstream->hold(alice, test::read_file(test::data_dir() + "/alice.asc"));
  REQUIRE(gw.lookup(get(alice)).cache == CacheResult::miss);

  gw.upstream->set_mode(test::FakeUpstream::Mode::fail);
  LookupOutcome failed = gw.lookup(get(bob));  // nothing cached: 503, with when to ask again
  CHECK(failed.result == R::unavailable);
  CHECK(failed.problem.status == 503);
  CHECK(failed.retry_after.count() > 0);
  CHECK_THAT(failed.problem.message(), Catch::Contains("connection refused"));
  CHECK(gw.lookup(get(bob)).result == R::unavailable);  // a failure is never remembered

  // A cached copy past fresh_for + stale_while_revalidate, within stale_if_error: served stale.
  const auto& c = gw.snap->config->cache;
  gw.now += (c.fresh_for + c.stale_while_revalidate).count() / 1000 + 60;
  LookupOutcome kept = gw.lookup(get(alice));
  CHECK(kept.result == R::keys);
  CHECK(kept.cache == CacheResult::stale);

  // Three failures made the only upstream unhealthy: panic mode says so before asking.
  LookupOutcome panic = gw.lookup(get(bob));
  CHECK(panic.problem.status == 503);
  CHECK_THAT(panic.problem.message(), Catch::Contains("every upstream is unreachable"));
}

TEST_CASE("the freshness matrix: every upstream timing out is 504", "[lookup-matrix][unit]") {
  InProcess gw;
  gw.upstream->set_mode(test::FakeUpstream::Mode::time_out);
  LookupOutcome slow = gw.lookup(get(test::fixture("BOB_FPR")));
  CHECK(slow.result == R::unavailable);
  CHECK(slow.problem.status == 504);
  CHECK(slow.retry_after.count() > 0);
}

TEST_CASE("the lookup policy refuses 32-bit key IDs before any cache or upstream",
          "[lookup-matrix][unit]") {
  InProcess gw;
  LookupOutcome o = gw.lookup("op=get&search=0x1125F2CA");
  CHECK(o.result == R::refused);
  CHECK(o.problem.status == 400);
  CHECK(gw.upstream->asked() == 0);
}

TEST_CASE("a listing, and each front's rendering of one outcome", "[lookup-matrix][unit]") {
  InProcess gw;
  const std::string alice = test::fixture("ALICE_FPR");
  gw.upstream->hold(alice, test::read_file(test::data_dir() + "/alice.asc"));
  LookupOutcome listing = gw.lookup("op=index&options=mr&search=0x" + alice);
  CHECK(listing.result == R::listing);
  REQUIRE(listing.entries.size() == 1);
  CHECK(listing.entries.front().id == alice);

  auto request = [](const std::string& q) { return hkp::parse_lookup(q).value(); };
  const hkp::LookupRequest get_req = request(get(alice));
  HttpRequest http;
  const HttpResponse hkp_answer = render(hkp_format(), get_req, gw.lookup(get(alice)), http);
  CHECK(hkp_answer.status == 200);
  CHECK(hkp_answer.content_type == "application/pgp-keys");
  CHECK(hkp_answer.payload().starts_with("-----BEGIN PGP PUBLIC KEY BLOCK-----"));
  CHECK(http.access.op == "get");
  CHECK(http.access.kind == "fingerprint");
  CHECK(http.access.cache == CacheResult::hit);

  const HttpResponse v2_answer = render(v2_format(), get_req, gw.lookup(get(alice)), http);
  CHECK(v2_answer.content_type == "application/pgp-keys;armor=no");
  const auto binary = hkp::dearmor(hkp_answer.payload());
  REQUIRE(binary.has_value());
  CHECK(v2_answer.payload() == binary->binary);

  const HttpResponse vks_answer = render(vks_format(), get_req, gw.lookup(get(alice)), http);
  bool named = false;
  for (const auto& [name, value] : vks_answer.headers) {
    if (name == "Content-Disposition") named = value.find(alice + ".asc") != std::string::npos;
  }
  CHECK(named);

  const std::string nobody = "0123456789ABCDEF0123456789ABCDEF01234567";
  const HttpResponse missing = render(hkp_format(), request(get(nobody)), gw.lookup(get(nobody)), http);
  CHECK(missing.status == 404);
  CHECK(missing.payload().starts_with("No data: No keys found"));
}
