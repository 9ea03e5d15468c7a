// What the services run on, built once by the app and handed to each: the cache, the upstream
// fleet, the pool for OpenPGP work, the clock, metrics and the cleaning tally. Tests build their
// own with a fake clock and Metrics::none().
#pragma once

#include "cache/store.hpp"
#include "gateway/observe/clock.hpp"
#include "gateway/observe/metrics.hpp"
#include "gateway/service/answer_cache.hpp"
#include "gateway/service/cleaning_tally.hpp"
#include "gateway/upstream/fleet.hpp"

namespace hkpgw::gateway {

class WorkPool;

struct ServiceDeps {
  cache::Store& store;
  Fleet& fleet;
  WorkPool& pool;  // every parse, verify and merge (never a network thread)
  Clock now;
  Metrics& metrics;
  CleaningTally& tally;
  AnswerCache& answers;  // armored single-key answers; the store's on_commit keeps it lean
};

}  // namespace hkpgw::gateway
