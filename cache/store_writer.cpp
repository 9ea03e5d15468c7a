// The writing side of Store: the writer thread's loop, batches applied in one transaction, the
// access fold, LRU eviction. Only the writer thread runs any of this.
#include <lmdb.h>

#include <algorithm>
#include <chrono>
#include <set>
#include <vector>

#include "cache/lmdb.hpp"
#include "cache/tables.hpp"
#include "cache/store.hpp"

namespace hkpgw::cache {

using namespace detail;
using lmdb::Cursor;
using lmdb::Table;
using lmdb::Txn;

int Store::apply(Txn& txn, const WriteBatch& batch) {
  for (const auto& put : batch.keys) {
    const auto f = Fingerprint::from_hex(put.key.info.fingerprint);
    if (!f) continue;
    const std::string_view fpr = f->bytes();
    std::set<std::string> stale_ids;
    if (const auto old = txn.get(Table::keys, fpr)) {
      if (auto rec = decode_key_record(*old)) {
        if (auto info = decode_key_info(rec->info_bytes)) {
          for (auto& id : index_keys(*info)) stale_ids.insert(std::move(id));
        }
      }
    }
    if (int rc = txn.put(Table::keys, fpr, encode_key_record(put.key, put.fetched_at, put.upstream))) {
      return rc;
    }
    for (const auto& id : index_keys(put.key.info)) {
      stale_ids.erase(id);
      if (int rc = txn.put(Table::ids, id, fpr, MDB_NODUPDATA)) return rc;
    }
    for (const auto& id : stale_ids) {  // identifiers the new copy no longer has
      if (int rc = txn.del(Table::ids, id, fpr)) return rc;
    }
    const auto was = get_stamp(txn, fpr);
    const Stamp s{put.fetched_at, std::max(was ? was->accessed_at : 0, put.fetched_at)};
    if (int rc = put_stamp(txn, fpr, was, s)) return rc;
  }
  for (const auto& [f, fetched_at] : batch.confirmed) {
    const auto was = get_stamp(txn, f.bytes());
    if (!was) continue;  // evicted meanwhile
    if (int rc = put_stamp(txn, f.bytes(), was, Stamp{fetched_at, was->accessed_at})) return rc;
  }
  for (const auto& [key, record] : batch.queries) {
    if (int rc = txn.put(Table::queries, key, encode_query_record(record))) return rc;
  }
  for (const auto& f : batch.purge) {
    if (int rc = remove_key(txn, f.bytes())) return rc;
  }
  for (const auto& e : batch.outbox_put) {
    if (int rc = txn.put(Table::outbox, outbox_key(e.upstream, e.fingerprint.bytes()), encode_outbox(e))) {
      return rc;
    }
  }
  for (const auto& [upstream, f] : batch.outbox_done) {
    if (int rc = txn.del(Table::outbox, outbox_key(upstream, f.bytes()))) return rc;
  }
  return MDB_SUCCESS;
}

int Store::commit_jobs(std::span<Job> jobs) {
  Txn txn(env_, tables_, Txn::Mode::write);
  if (!txn) return txn.error();
  for (auto& job : jobs) {
    if (const int rc = apply(txn, job.batch)) return rc;  // aborted with `txn`
  }
  return txn.commit();
}

int Store::fold_accesses() {
  std::vector<Fingerprint> pending;
  {
    std::lock_guard lock(access_mutex_);
    pending.swap(accesses_);
  }
  if (pending.empty()) return MDB_SUCCESS;
  std::sort(pending.begin(), pending.end());
  pending.erase(std::unique(pending.begin(), pending.end()), pending.end());
  const std::int64_t now = options_.now();
  Txn txn(env_, tables_, Txn::Mode::write);
  if (!txn) return txn.error();
  for (const auto& f : pending) {
    const std::string_view fpr = f.bytes();
    const auto was = get_stamp(txn, fpr);
    if (!was || now - was->accessed_at < std::max<std::int64_t>(1, options_.access_granularity)) {
      continue;  // recorded recently enough (LRU order is exact to access_granularity)
    }
    if (const int rc = put_stamp(txn, fpr, was, Stamp{was->fetched_at, now})) return rc;
  }
  return txn.commit();
}

int Store::evict_oldest(std::size_t n, std::int64_t& newest_evicted, Committed& removed) {
  Txn txn(env_, tables_, Txn::Mode::write);
  if (!txn) return txn.error();
  std::vector<std::string> oldest;  // LRU keys: accessed_at | fingerprint, oldest first
  {
    Cursor lru(txn, Table::lru);
    for (bool more = lru.first(); more && oldest.size() < n; more = lru.next()) {
      if (lru.key().size() == kLruKeyBytes) oldest.emplace_back(lru.key());
    }
  }
  std::int64_t newest = newest_evicted;
  for (const auto& k : oldest) {
    newest = std::max(newest, lru_time(k));
    if (const int rc = remove_key(txn, std::string_view(k).substr(8))) return rc;
  }
  if (const int rc = txn.commit()) return rc;
  newest_evicted = newest;
  for (const auto& k : oldest) removed.keys.push_back(*Fingerprint::from_bytes(std::string_view(k).substr(8)));
  return MDB_SUCCESS;
}

bool Store::evict(std::uint64_t above, std::uint64_t down_to) {
  std::uint64_t used = 0;
  std::size_t to_evict = 0;
  {  // The common case after a commit: under the mark, and a read transaction is enough to see it.
    Txn r(env_, tables_, Txn::Mode::read);
    if (!r) return false;
    used = used_bytes(r);
    const auto st = r.stat(Table::keys);
    if (used <= above || !st || st->ms_entries == 0) return false;
    // Page counts hardly fall inside the transactions that delete (LMDB frees a page only when
    // it empties or merges), so the number of keys to evict is worked out up front from the
    // average cost of a key; the next round corrects any shortfall.
    const std::uint64_t per_key = std::max<std::uint64_t>(1, used / st->ms_entries);
    const std::uint64_t excess = used > down_to ? used - down_to : used / 10;
    to_evict = static_cast<std::size_t>(
        std::min<std::uint64_t>(st->ms_entries, (excess + per_key - 1) / per_key));
  }
  // Small transactions: on a full map even a deletion needs free pages for its copy-on-write
  // path, and one transaction deleting thousands of keys needs many. A chunk that still finds
  // the map full is retried smaller, down to one key.
  std::size_t done = 0, chunk = kEvictChunk;
  std::int64_t newest_evicted = 0;
  Committed removed;
  removed.eviction = true;
  while (done < to_evict) {
    const std::size_t n = std::min(chunk, to_evict - done);
    const int rc = evict_oldest(n, newest_evicted, removed);
    if (rc == MDB_SUCCESS) {
      done += n;
    } else if (rc == MDB_MAP_FULL && chunk > 1) {
      chunk = std::max<std::size_t>(1, chunk / 8);
    } else {
      break;
    }
  }
  if (done == 0) return false;
  // Query records no newer than the keys just evicted go too (their answers are as cold).
  // Stale query records only cost space: if this fails, the next round takes them.
  Txn txn(env_, tables_, Txn::Mode::write);
  std::vector<std::string> gone;
  {
    Cursor q(txn, Table::queries);
    for (bool more = q.first(); more; more = q.next()) {
      auto record = decode_query_record(q.value());
      if (record && record->fetched_at > newest_evicted) continue;
      std::string key(q.key());  // before the deletion moves the cursor's page
      if (q.del() == MDB_SUCCESS) gone.push_back(std::move(key));
    }
  }
  if (txn && txn.commit() == MDB_SUCCESS) {
    for (auto& k : gone) removed.queries.push_back(std::move(k));
  }
  evicted_ += done;
  if (options_.on_commit) options_.on_commit(removed);
  if (options_.on_evict) options_.on_evict(done, used);
  return true;
}

void Store::report(std::span<const Job> jobs, const std::vector<int>& results) const {
  if (!options_.on_commit) return;
  Committed c;
  for (std::size_t i = 0; i < jobs.size(); ++i) {
    if (results[i] != MDB_SUCCESS) continue;
    const WriteBatch& b = jobs[i].batch;
    for (const auto& put : b.keys) {
      if (auto f = Fingerprint::from_hex(put.key.info.fingerprint)) c.keys.push_back(*f);
    }
    for (const auto& [fpr, at] : b.confirmed) c.keys.push_back(fpr);
    for (const auto& fpr : b.purge) c.keys.push_back(fpr);
    for (const auto& [key, record] : b.queries) c.queries.push_back(key);
  }
  if (!c.empty()) options_.on_commit(c);
}

void Store::writer_loop() {
  auto last_fold = std::chrono::steady_clock::now();
  while (true) {
    std::vector<Job> jobs;
    {
      std::unique_lock lock(mutex_);
      wake_.wait_for(lock, kAccessFoldInterval, [&] { return stopping_ || !queue_.empty(); });
      if (stopping_ && queue_.empty()) {
        lock.unlock();
        fold_accesses();
        return;
      }
      jobs.assign(std::make_move_iterator(queue_.begin()), std::make_move_iterator(queue_.end()));
      queue_.clear();
    }
    // Accesses are folded about once a second, and before every write (so flush() covers them).
    if (!jobs.empty() || std::chrono::steady_clock::now() - last_fold >= kAccessFoldInterval) {
      fold_accesses();
      last_fold = std::chrono::steady_clock::now();
    }
    // max_size bounds the data; the map needs headroom too (a full map cannot even delete), so
    // eviction also starts at 85% of the map. It runs after every write, folds included.
    // One round: the count is estimated from the average key, and page counts lag behind the
    // deletions, so another round right away would evict what a later commit no longer needs
    // gone (tried: it evicted hot and new keys). The next write's round corrects a shortfall.
    const auto evict_if_needed = [this] {
      evict(std::min(static_cast<std::uint64_t>(options_.max_size * kEvictAbove),
                     static_cast<std::uint64_t>(map_bytes_ * 0.85)),
            std::min(static_cast<std::uint64_t>(options_.max_size * kEvictDownTo),
                     static_cast<std::uint64_t>(map_bytes_ * 0.75)));
    };
    if (jobs.empty()) {
      evict_if_needed();
      continue;
    }
    // One transaction for everything that queued up; if it fails (map full, say), make room and
    // commit the jobs one by one so one bad batch does not sink the others.
    std::vector<int> results(jobs.size(), commit_jobs(jobs));
    if (results.front() != MDB_SUCCESS) {
      if (results.front() == MDB_MAP_FULL) {
        // Room for the batch: below 70% of max_size and below half the map, whichever is less.
        evict(0, std::min(static_cast<std::uint64_t>(options_.max_size * (kEvictDownTo - 0.1)),
                          map_bytes_ / 2));
      }
      for (std::size_t i = 0; i < jobs.size(); ++i) results[i] = commit_jobs({&jobs[i], 1});
    }
    report(jobs, results);
    evict_if_needed();
    for (std::size_t i = 0; i < jobs.size(); ++i) {
      if (jobs[i].done) {
        jobs[i].done(results[i] ? std::error_code(results[i], lmdb_category()) : std::error_code());
      }
    }
    {
      std::lock_guard lock(mutex_);
      committed_ += jobs.size();
    }
    flushed_.notify_all();
  }
}

}  // namespace hkpgw::cache
