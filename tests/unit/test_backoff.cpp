// The outbox's retry schedule for forwards that failed.
#include <catch2/catch.hpp>

#include "gateway/service/add_service.hpp"

using hkpgw::gateway::forward_backoff;

TEST_CASE("a failed forward is retried after 1 s, doubling, at most an hour", "[gateway][unit]") {
  CHECK(forward_backoff(0) == 1);
  CHECK(forward_backoff(1) == 2);
  CHECK(forward_backoff(2) == 4);
  CHECK(forward_backoff(10) == 1024);
  CHECK(forward_backoff(11) == 2048);
  CHECK(forward_backoff(12) == 3600);  // 4096 capped
  CHECK(forward_backoff(40) == 3600);  // no overflow however many attempts
  CHECK(forward_backoff(4'000'000'000u) == 3600);
}
