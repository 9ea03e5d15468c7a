// The LMDB cache: keys by primary fingerprint, a secondary index from every identifier (primary
// and subkey fingerprints, 64- and 32-bit key IDs, user ID emails) to the primary fingerprint,
// query records for searches that may match keys we have never seen. A key's record lives in a
// table ordered by when it was written (every write appends), found through the key's slot
// (fingerprint -> record number, when an upstream last confirmed it, when a client last asked
// for it, when the record was placed).
//
// Concurrency (strfry's model): any thread may read; a read opens a short read-only transaction,
// hands views to a callback, and closes it before returning (never held across a co_await). All
// writes go to one writer thread that commits whatever has queued up in one transaction. Reads
// never write: note_access() drops the key's fingerprint in a bounded buffer that the writer
// folds into the slots about once a second, and only when the slot's access time is older than
// access_granularity (10 minutes): LRU order is exact to that, and a read-only hour writes each
// key it touches at most six times, not once a second (at a million keys that was gigabytes).
//
// Size: when the pages in use pass 90% of max_size the writer evicts from the oldest end of the
// records table (and query records older than what it evicted) until use is under 80%. A key
// read since its record was placed gets a second chance instead: its record moves to the end
// (CLOCK, an approximation of LRU order). Because eviction deletes records in the order they lie
// in the file, it frees whole pages: one round reaches its target whatever order clients read
// keys in (deleting in LRU order from a table sorted by fingerprint left every page partly full).
// The map is twice max_size, so LMDB's copy-on-write has room; a write that still finds the map
// full triggers an eviction round and one retry.
//
// Changes: every write goes through write() (lookups, submissions, the admin API, the cache CLI
// alike) and, with eviction, is reported once committed to StoreOptions::on_commit: the one place
// a layer above (a response cache, replication) learns what changed.
//
// Durability: LMDB's defaults (a synced commit per transaction, no NOSYNC/NOMETASYNC/WRITEMAP), so
// a write that was acknowledged survives a crash of the process or the machine.
#pragma once

#include <array>
#include <chrono>
#include <atomic>
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

namespace lmdb {
class Txn;
}

inline constexpr int kSchemaVersion = 4;

// What one commit changed, for StoreOptions::on_commit.
struct Committed {
  std::vector<Fingerprint> keys;     // put, confirmed, purged or evicted
  std::vector<std::string> queries;  // query_key()s written or removed
  bool eviction = false;             // an eviction round (not a client's write)
  bool empty() const { return keys.empty() && queries.empty(); }
};

struct StoreOptions {
  StoreOptions(std::string p = {}, std::uint64_t max = 1ULL << 30)
      : path(std::move(p)), max_size(max) {}
  std::string path;
  std::uint64_t max_size;
  // Opens the environment read-only (no writer thread, no lock): stats, verify, export, which
  // are safe next to a running gateway.
  bool read_only = false;
  // Seconds since the epoch; tests pass their own.
  std::function<std::int64_t()> now;
  // How stale a key's stored access time may be before a read records a newer one (seconds).
  std::int64_t access_granularity = 600;
  // Called on the writer thread after each eviction round.
  struct Evicted {
    std::size_t keys = 0;            // evicted
    std::size_t second_chances = 0;  // records moved to the end instead (read since placed)
    std::uint64_t used_before = 0, used_after = 0;  // bytes in use
    double seconds = 0;              // the round's duration
  };
  std::function<void(const Evicted&)> on_evict;
  // Called on the writer thread after each commit that changed keys or query records (write()
  // batches, eviction rounds), never for access-time folds. Must be quick and must not throw.
  std::function<void(const Committed&)> on_commit;
  // The LMDB map; 0 = twice max_size, at least 64 MiB. Tests set it small to reach a full map.
  std::uint64_t map_bytes = 0;
  // Records an eviction transaction looks at, at most; 0 = the default (tests set it small).
  std::size_t evict_chunk = 0;
  // Read data.mdb into the page cache in the background after opening, when it is under half of
  // the memory available: a restarted gateway's first lookups otherwise fault pages in one at
  // a time (200k keys: 3.8k lookups/s for the first 3 s, 45k once warm). The serving gateway
  // sets it; the cache CLI does not.
  bool warm_up = false;
};

// Thrown only by the constructor: the cache cannot be opened (foreign file, newer schema, no
// permission, in use by another writer). The message names the path and what to do.
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
  std::uint64_t file_bytes = 0;  // data.mdb on disk
  std::uint64_t max_bytes = 0;   // max_size
  std::uint64_t evicted = 0;     // keys evicted since this process opened the cache
  std::uint64_t second_chances = 0;  // records eviction moved to the end instead (read again)
  std::uint64_t outbox = 0;      // submitted keys waiting to be forwarded
  std::uint64_t write_failures = 0;  // writes that failed for good since the cache was opened
  int schema = kSchemaVersion;
};

struct KeyPut {
  hkp::ParsedKey key;
  std::int64_t fetched_at = 0;
  std::string upstream;  // where it came from ("upload", "import" for local sources)
};

// A submitted key waiting to be forwarded to an upstream (/pks/add with forward_adds): kept in
// LMDB so a restart does not lose it. What is sent is the key as cached at the time of sending.
struct OutboxEntry {
  std::string upstream;
  Fingerprint fingerprint;
  std::int64_t next_attempt = 0;
  std::uint32_t attempts = 0;
  std::string last_error;
};

struct WriteBatch {
  std::vector<KeyPut> keys;
  // Keys an upstream confirmed without changing them: only their fetched_at moves (the key
  // record and its index entries are not rewritten). Binary fingerprints.
  std::vector<std::pair<Fingerprint, std::int64_t>> confirmed;
  std::vector<std::pair<std::string, QueryRecord>> queries;  // query_key() -> record
  std::vector<Fingerprint> purge;  // to remove with everything they index
  std::vector<OutboxEntry> outbox_put;                          // queued or rescheduled
  std::vector<std::pair<std::string, Fingerprint>> outbox_done;  // (upstream, fingerprint)
  // Nobody waits for this commit (a remembered "not found"): it may wait up to
  // kLazyWriteWindow for later writes to share its transaction (and its fsyncs).
  bool lazy = false;
  bool empty() const {
    return keys.empty() && confirmed.empty() && queries.empty() && purge.empty() &&
           outbox_put.empty() && outbox_done.empty();
  }
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
  // The same for a list of primary fingerprints; unknown ones are skipped.
  std::size_t visit_fingerprints(std::span<const Fingerprint> fingerprints,
                                 const Visitor& visit) const;
  // Keys whose indexed email address contains `needle` (lower-case), at most `limit` of them.
  // A scan of the email index: the fallback for text searches when every upstream fails, never
  // the hot path.
  // Looks at no more than `max_scanned` address entries (the scan is linear in the index).
  std::size_t visit_text(std::string_view needle, std::size_t limit, const Visitor& visit,
                         std::size_t max_scanned = SIZE_MAX) const;
  // Every key, in the order its record lies in the file (oldest placement first: a sequential
  // read). One read transaction for the whole walk (export).
  std::size_t visit_all(const Visitor& visit) const;
  // The times of up to `n` cached keys in fingerprint order, the first after `after` (nullopt:
  // from the first key): the refresher's walk, a bounded slice per call (one short read
  // transaction over the slots, no record read). Empty at the end.
  struct KeyTimes {
    Fingerprint fingerprint;
    std::int64_t fetched_at = 0;   // when an upstream last confirmed it
    std::int64_t accessed_at = 0;  // when a client was last served it (to access_granularity)
  };
  std::vector<KeyTimes> key_times(const std::optional<Fingerprint>& after, std::size_t n) const;
  std::optional<QueryRecord> get_query(std::string_view key) const;
  // Every queued forward (a few, normally).
  std::vector<OutboxEntry> outbox() const;
  StoreStats stats() const;
  // True when a read transaction can be opened (the environment is usable): readiness probes.
  bool readable() const;
  // Every inconsistency between the tables, one line each; empty = consistent.
  std::vector<std::string> verify() const;
  // The schema version the cache had when it was opened (older ones are migrated on open).
  int opened_schema() const { return opened_schema_; }

  // A client was served this key. Cheap, never blocks on I/O, may drop the note when the
  // buffer is full (LRU order is approximate by design).
  // `accessed_at` is the access time the read saw (KeyRecordView): within access_granularity of
  // now the call does nothing at all; 0 = unknown, always noted.
  void note_access(const Fingerprint& fingerprint, std::int64_t accessed_at = 0);
  std::int64_t access_granularity() const { return options_.access_granularity; }

  // Queues a batch for the writer thread; `done` runs on that thread after the commit (or with
  // the LMDB error). Keys replace the cached copy and its index entries.
  void write(WriteBatch batch, Done done);
  // write(), waiting for the commit: for callers that may block (the cache CLI). Coroutines use
  // the awaitable commit() in gateway/service/cache_writer.hpp; both end up here.
  std::error_code write_and_wait(WriteBatch batch);
  // Blocks until everything queued before the call is committed.
  void flush();
  // Writes a compacted copy of the cache (live pages only, renumbered) as `dir`/data.mdb; `dir`
  // must exist and be empty. LMDB's file never shrinks (freed pages are reused, not returned),
  // so after eviction or purges this is how the disk is given back: `cache compact`.
  // Returns the LMDB result.
  int copy_compacted(const std::string& dir);
  // Writes a compacted copy of the whole cache (keys, query records, the outbox) to the open file
  // `fd`, from one read transaction: a consistent snapshot, taken beside a running gateway when
  // this Store is read-only. An LMDB error code, or 0.
  int copy_to(int fd);

 private:
  struct Job {
    WriteBatch batch;
    Done done;
  };
  void writer_loop();
  void warm_up() const;
  int apply(lmdb::Txn& txn, const WriteBatch& batch);
  int commit_jobs(std::span<Job> jobs);
  int fold_accesses();
  // Evicts from the oldest records when more than `above` bytes are in use, down to about
  // `down_to` (a tenth of the keys when already below it: the map is full all the same).
  // `second_chances`: whether keys read since their placement move to the end instead (not when
  // the map is full: a move needs a free page). True when it evicted something.
  // `yield`: return (true) when writes are queued, leaving the round to go on at the next call.
  bool evict(std::uint64_t above, std::uint64_t down_to, bool second_chances = true,
             bool yield = true);
  struct EvictionRound {
    std::size_t evicted = 0, moved = 0, looked_at = 0;
    bool second_chances = true;         // keys read since placed move to the end
    std::int64_t newest_placed = 0;     // the newest placement among evicted keys
    Committed removed;                  // the current chunk's
  };
  struct PendingRound {  // a round that yielded to writes, resumed by the next evict()
    EvictionRound progress;
    std::uint64_t down_to = 0, used_before = 0;
    bool to_size = true;
    std::size_t goal = 0, walk = 0;
    std::chrono::steady_clock::time_point started;
  };
  struct EvictionMeasure {
    bool ok = false;
    std::uint64_t used = 0;        // bytes in use
    std::size_t records = 0;
  };
  EvictionMeasure measure_for_eviction() const;
  bool queue_waiting();
  // One transaction over the (at most) `n` oldest records, evicting or moving each, until
  // `round.evicted` reaches `goal`. Returns the LMDB result; `round` changes only on success.
  int evict_oldest(std::size_t n, std::size_t goal, EvictionRound& round);
  // Appends `value` (fingerprint | key record) at the end of the records table.
  int place(lmdb::Txn& txn, std::string_view value, std::uint64_t& number);
  void report(std::span<const Job> jobs, const std::vector<int>& results) const;
  std::uint64_t used_bytes(const lmdb::Txn& txn) const;
  void open_tables(const std::string& path);
  void check_file_length(const std::string& path) const;  // throws StoreError when cut short
  // Schemas 1-3 kept records in a table by fingerprint (with stamps and an LRU table since 2):
  // rewritten into records in LRU order and slots, in the opening transaction.
  void migrate_to_4(lmdb::Txn& txn, int schema);

  StoreOptions options_;
  std::uint64_t map_bytes_ = 0;  // the LMDB map size in effect
  MDB_env* env_ = nullptr;
  std::array<unsigned, 6> tables_{};  // LMDB handles, in lmdb::kTables order
  std::uint64_t next_record_ = 1;     // the writer's next record number (the last one + 1)
  std::optional<PendingRound> round_;  // the writer's eviction round in progress, if it yielded
  int opened_schema_ = kSchemaVersion;
  int lock_fd_ = -1;

  std::mutex mutex_;
  std::condition_variable wake_, flushed_;
  std::deque<Job> queue_;
  std::size_t eager_queued_ = 0;                    // jobs in queue_ that are not lazy
  std::chrono::steady_clock::time_point queued_since_;  // when queue_ last became non-empty
  std::uint64_t queued_ = 0, committed_ = 0;
  bool stopping_ = false;
  std::thread writer_;
  std::thread warm_up_;  // reads the file ahead once (StoreOptions::warm_up)

  std::mutex access_mutex_;
  std::vector<Fingerprint> accesses_;
  std::atomic<std::uint64_t> evicted_{0}, moved_{0}, write_failures_{0};
};

}  // namespace hkpgw::cache
