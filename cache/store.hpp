// The LMDB cache: keys by primary fingerprint, a secondary index from every identifier (primary
// and subkey fingerprints, 64- and 32-bit key IDs, user ID emails) to the primary fingerprint, and
// query records for searches that may match keys we have never seen.
//
// Concurrency (strfry's model): any thread may read; a read opens a short read-only transaction,
// hands views to a callback, and closes it before returning (never held across a co_await). All
// writes go to one writer thread that commits whatever has queued up in one transaction.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "cache/record.hpp"
#include "hkp/key.hpp"

struct MDB_env;

namespace hkpgw::cache {

struct StoreOptions {
  std::string path;
  std::uint64_t max_size = 1ULL << 30;
};

// Thrown only by the constructor: the cache cannot be opened (foreign file, wrong schema, no
// permission). The message names the path and what to do.
class StoreError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

const std::error_category& lmdb_category();

struct StoreStats {
  std::uint64_t keys = 0;
  std::uint64_t identifiers = 0;
  std::uint64_t queries = 0;
  std::uint64_t used_bytes = 0;  // pages in use * page size
  std::uint64_t map_bytes = 0;
};

struct KeyPut {
  hkp::ParsedKey key;
  std::int64_t fetched_at = 0;
  std::string upstream;  // where it came from ("upload", "import" for local sources)
};

struct WriteBatch {
  std::vector<KeyPut> keys;
  std::vector<std::pair<std::string, QueryRecord>> queries;  // query_key() -> record
  bool empty() const { return keys.empty() && queries.empty(); }
};

class Store {
 public:
  using Visitor = std::function<void(const KeyRecordView&)>;
  using Done = std::function<void(std::error_code)>;

  explicit Store(const StoreOptions& options);  // throws StoreError
  ~Store();                                      // commits what is queued, then closes
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  // Calls `visit` once per cached key matching a key-ID, fingerprint or email search (each key
  // at most once). Views are valid only during the call. Returns how many keys were visited.
  // Thread-safe. Text searches match nothing here (they go through query records).
  std::size_t visit(const hkp::Search& search, const Visitor& visit) const;
  // The same for a list of primary fingerprints (hex); unknown ones are skipped.
  std::size_t visit_fingerprints(std::span<const std::string> fingerprints,
                                 const Visitor& visit) const;
  // Keys whose indexed email address contains `needle` (lower-case), at most `limit` of them.
  // A scan of the email index: the fallback for text searches when every upstream fails, never
  // the hot path.
  std::size_t visit_text(std::string_view needle, std::size_t limit, const Visitor& visit) const;
  std::optional<QueryRecord> get_query(std::string_view key) const;
  StoreStats stats() const;
  // True when a read transaction can be opened (the environment is usable): readiness probes.
  bool readable() const;

  // Queues a batch for the writer thread; `done` runs on that thread after the commit (or with
  // the LMDB error). Keys replace the cached copy and its index entries.
  void write(WriteBatch batch, Done done);
  // Blocks until everything queued before the call is committed.
  void flush();

 private:
  struct Job {
    WriteBatch batch;
    Done done;
  };
  void writer_loop();
  int apply(void* txn, const WriteBatch& batch);
  int commit_jobs(std::span<Job> jobs);

  MDB_env* env_ = nullptr;
  unsigned keys_dbi_ = 0, ids_dbi_ = 0, queries_dbi_ = 0, meta_dbi_ = 0;

  std::mutex mutex_;
  std::condition_variable wake_, flushed_;
  std::deque<Job> queue_;
  std::uint64_t queued_ = 0, committed_ = 0;
  bool stopping_ = false;
  std::thread writer_;
};

}  // namespace hkpgw::cache
