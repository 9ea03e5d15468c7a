// What the services come to, for a front to word (gateway/http/formats.hpp): the services decide
// (policy, freshness, verification) and never format an answer; each front renders outcomes its
// own way (HKP's armor and mr listings, VKS's attachment, HKP v2's binary bundle and JSON, an
// HTML page) and writes its request's access record.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "cache/record.hpp"
#include "gateway/observe/cache_result.hpp"
#include "gateway/service/answer_cache.hpp"
#include "hkp/index.hpp"
#include "hkp/problem.hpp"

namespace hkpgw::gateway {

// A request the service would not or could not carry out: the problem (its status is HKP's,
// which a front may word otherwise) and, when asking again later may work, after how long.
struct Refusal {
  Problem problem;
  std::chrono::seconds retry_after{0};  // 0: no Retry-After
};

// One key of a lookup's answer.
struct AnsweredKey {
  cache::Fingerprint id;
  // Its binary packets and their armor, made once and shared with the answer cache (a cached
  // key, or the one key of a fetch's answer); null when the answer has several fetched keys.
  std::shared_ptr<const AnswerCache::Prepared> prepared;
  // Its binary packets otherwise (shared with the fetch's result).
  std::shared_ptr<const std::string> packets;

  const std::string& binary() const { return prepared ? prepared->packets : *packets; }
};

struct LookupOutcome {
  enum class Result {
    keys,         // `keys` (op=get)
    listing,      // `entries` (op=index, vindex)
    not_found,    // nobody has it (404; `problem` says what was asked)
    refused,      // the lookup policy refuses the request itself (`problem`: a 400)
    unavailable,  // every upstream failed and nothing is cached (`problem`: 503 or 504)
  };
  Result result = Result::not_found;
  std::vector<AnsweredKey> keys;
  std::vector<hkp::IndexEntry> entries;
  Problem problem;                       // not_found, refused, unavailable
  std::chrono::seconds retry_after{0};   // unavailable: when asking again may work
  CacheResult cache = CacheResult::none;  // none for `refused`
  std::string upstream;                  // who answered ("" = the cache, or nobody)
  std::int64_t age = -1;                 // seconds since an upstream confirmed it; -1: unknown
  std::int64_t now = 0;                  // when it was decided (listings show ages)
  // The answer may be sent again as it is (ReusedAnswers::Ticket), opaque to the fronts.
  std::shared_ptr<const void> reuse;

  bool found() const { return result == Result::keys || result == Result::listing; }
};

}  // namespace hkpgw::gateway
