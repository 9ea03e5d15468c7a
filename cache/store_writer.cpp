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
  std::string value;
  for (const auto& put : batch.keys) {
    const auto f = Fingerprint::from_hex(put.key.info.fingerprint);
    if (!f) continue;
    const std::string_view fpr = f->bytes();
    std::set<std::string> stale_ids;
    const auto was = get_slot(txn, fpr);
    if (was) {
      if (const auto old = get_record(txn, fpr, *was)) {
        if (auto rec = decode_key_record(*old)) {
          if (auto info = decode_key_info(rec->info_bytes)) {
            for (auto& id : index_keys(*info)) stale_ids.insert(std::move(id));
          }
        }
      }
      if (int rc = txn.del(Table::records, record_key(was->record))) return rc;
    }
    // The new copy goes to the end of the records table, as the newest placement.
    value.assign(fpr);
    value += encode_key_record(put.key, put.fetched_at, put.upstream);
    Slot slot{0, put.fetched_at, std::max(was ? was->accessed_at : 0, put.fetched_at),
              options_.now()};
    if (int rc = place(txn, value, slot.record)) return rc;
    if (int rc = txn.put(Table::keys, fpr, encode_slot(slot))) return rc;
    for (const auto& id : index_keys(put.key.info)) {
      stale_ids.erase(id);
      if (int rc = txn.put(Table::ids, id, fpr, MDB_NODUPDATA)) return rc;
    }
    for (const auto& id : stale_ids) {  // identifiers the new copy no longer has
      if (int rc = txn.del(Table::ids, id, fpr)) return rc;
    }
  }
  for (const auto& [f, fetched_at] : batch.confirmed) {
    auto slot = get_slot(txn, f.bytes());
    if (!slot) continue;  // evicted meanwhile
    slot->fetched_at = fetched_at;
    if (int rc = txn.put(Table::keys, f.bytes(), encode_slot(*slot))) return rc;
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
    auto slot = get_slot(txn, fpr);
    if (!slot || now - slot->accessed_at < std::max<std::int64_t>(1, options_.access_granularity)) {
      continue;  // recorded recently enough (access times are exact to access_granularity)
    }
    slot->accessed_at = now;
    if (const int rc = txn.put(Table::keys, fpr, encode_slot(*slot))) return rc;
  }
  return txn.commit();
}

int Store::evict_oldest(std::size_t n, std::size_t goal, EvictionRound& round) {
  Txn txn(env_, tables_, Txn::Mode::write);
  if (!txn) return txn.error();
  // The oldest records, copied out first: the deletions and moves below change the table.
  std::vector<std::pair<std::uint64_t, std::string>> oldest;
  {
    Cursor records(txn, Table::records);
    for (bool more = records.first(); more && oldest.size() < n; more = records.next()) {
      if (records.key().size() == kRecordKeyBytes) {
        oldest.emplace_back(record_number(records.key()), records.value());
      }
    }
  }
  EvictionRound r = round;
  const std::int64_t now = options_.now();
  for (const auto& [number, value] : oldest) {
    if (r.evicted >= goal) break;
    ++r.looked_at;
    const auto owner = record_owner(txn, number, value);
    if (!owner) {  // belongs to no key (verify reports these)
      if (const int rc = txn.del(Table::records, record_key(number))) return rc;
      continue;
    }
    const std::string_view fpr = owner->fingerprint;
    auto slot = std::optional<Slot>(owner->slot);
    // At most as many second chances as evictions (plus one chunk): a round rewrites about as
    // many records as it deletes, even when nearly every key was read again.
    if (slot->read_since_placed() && r.second_chances && r.moved < r.evicted + kEvictChunk) {
      // A second chance: the record moves to the end, as if placed now.
      if (const int rc = txn.del(Table::records, record_key(number))) return rc;
      if (const int rc = place(txn, value, slot->record)) return rc;
      slot->placed_at = now;
      if (const int rc = txn.put(Table::keys, fpr, encode_slot(*slot))) return rc;
      ++r.moved;
      continue;
    }
    std::vector<std::string> emails;
    if (const int rc = remove_key(txn, fpr, &emails)) return rc;
    // The query records listing this key for its addresses go with it, in this transaction
    // (so the measure after it sees their pages): an address's next lookup asks again rather
    // than answer with part of its list.
    for (const auto& email : emails) {
      std::string qkey = query_key(hkp::Op::get, hkp::Search{hkp::SearchKind::email, email});
      if (!txn.get(Table::queries, qkey)) continue;
      if (const int rc = txn.del(Table::queries, qkey)) return rc;
      r.removed.queries.push_back(std::move(qkey));
    }
    ++r.evicted;
    r.newest_placed = std::max(r.newest_placed, slot->placed_at);
    r.removed.keys.push_back(*Fingerprint::from_bytes(fpr));
  }
  // (Record numbers handed out in a transaction that aborts are skipped, never reused: the
  // table only needs them increasing.)
  if (const int rc = txn.commit()) return rc;
  round = std::move(r);
  return MDB_SUCCESS;
}

Store::EvictionMeasure Store::measure_for_eviction() const {
  EvictionMeasure m;
  Txn r(env_, tables_, Txn::Mode::read);
  if (!r) return m;
  m.ok = true;
  m.used = used_bytes(r);
  if (const auto st = r.stat(Table::records)) m.records = st->ms_entries;
  return m;
}

bool Store::queue_waiting() {
  std::lock_guard lock(mutex_);
  return !queue_.empty();
}

bool Store::evict(std::uint64_t above, std::uint64_t down_to, bool second_chances, bool yield) {
  auto m = measure_for_eviction();
  if (!m.ok) return false;
  if (!round_) {
    if (m.used <= above || m.records == 0) return false;  // the common case
    round_.emplace();
    round_->down_to = down_to;
    round_->used_before = m.used;
    round_->started = std::chrono::steady_clock::now();
    // Already under the target with the map full all the same: a tenth of the keys.
    round_->to_size = m.used > down_to;
    round_->goal = round_->to_size ? SIZE_MAX : std::max<std::size_t>(1, m.records / 10);
    round_->walk = 2 * m.records;
    round_->progress.second_chances = second_chances;
    round_->progress.removed.eviction = true;
  }
  EvictionRound& round = round_->progress;
  if (!second_chances) round.second_chances = false;
  // Small transactions, measured after each: the oldest records lie together, so each chunk
  // frees whole pages and the round stops as soon as the pages in use are under its target.
  // (Worked out up front instead, from the records' cost per key, it overshot: deleting most of
  // the keys merges the pages of the other tables too.) Each chunk is reported to on_commit as
  // it commits. A round yields to queued writes between chunks (`yield`): the writer commits
  // them and resumes the round, so a request's write waits for one chunk, not for the round
  // (a million-key round takes tens of seconds). On a full map even a deletion needs free
  // pages for its copy-on-write path: a chunk that finds the map full is retried smaller,
  // down to one record. The walk is bounded by two passes over the table.
  std::size_t largest = options_.evict_chunk ? options_.evict_chunk : kEvictChunk;
  while ((round_->to_size ? m.used > round_->down_to : round.evicted < round_->goal) &&
         round.looked_at < round_->walk) {
    // No more records than reach the target if every table shrank with them (the average cost
    // of a key): a chunk cannot overshoot. When the other tables keep their pages (holes that
    // later keys fill), the next chunk takes more; the round closes in on the target from above.
    // (Sized by the records table's cost alone, a chunk emptied a small cache whose other
    // tables did shrink: 404 of 409 keys for a target of half.)
    const std::uint64_t per_key = m.records ? std::max<std::uint64_t>(1, m.used / m.records) : 1;
    const std::size_t needed = round_->to_size ? (m.used - round_->down_to + per_key - 1) / per_key
                                               : round_->goal - round.evicted;
    const std::size_t chunk = std::clamp<std::size_t>(needed, 1, largest);
    const std::size_t evicted_before = round.evicted;
    const int rc = evict_oldest(chunk, round_->goal, round);
    if (rc == MDB_MAP_FULL && largest > 1) {
      largest = std::max<std::size_t>(1, chunk / 8);
      round.second_chances = false;  // a move needs a free page; so does everything else now
    } else if (rc != MDB_SUCCESS) {
      break;
    }
    if (round.evicted > evicted_before) {
      evicted_ += round.evicted - evicted_before;
      if (options_.on_commit) options_.on_commit(round.removed);
    }
    round.removed.keys.clear();
    round.removed.queries.clear();
    m = measure_for_eviction();
    if (!m.ok) break;
    // After at least one transaction per call, so that writes arriving without pause cannot
    // hold a round off (the cache would grow past max_size under a steady stream of misses).
    if (yield && queue_waiting()) return true;  // resumed after the queued writes
  }
  const PendingRound done = std::move(*round_);
  round_.reset();
  if (done.progress.evicted == 0) return false;
  // Listings and "not found" records no newer than the keys just evicted go too: their answers
  // are as cold. (An address's list of keys went with the keys.) Stale query records only cost
  // space: if this fails, the next round takes them.
  Committed removed;
  removed.eviction = true;
  Txn txn(env_, tables_, Txn::Mode::write);
  std::vector<std::string> gone;
  {
    Cursor q(txn, Table::queries);
    for (bool more = q.first(); more; more = q.next()) {
      const auto record = decode_query_record(q.value());
      if (record && (record->kind == QueryKind::fingerprints ||
                     record->fetched_at > done.progress.newest_placed)) {
        continue;
      }
      std::string key(q.key());  // before the deletion moves the cursor's page
      if (q.del() == MDB_SUCCESS) gone.push_back(std::move(key));
    }
  }
  if (txn && txn.commit() == MDB_SUCCESS && !gone.empty()) {
    removed.queries = std::move(gone);
    if (options_.on_commit) options_.on_commit(removed);
  }
  moved_ += done.progress.moved;
  if (options_.on_evict) {
    m = measure_for_eviction();
    const std::chrono::duration<double> took = std::chrono::steady_clock::now() - done.started;
    options_.on_evict(
        {done.progress.evicted, done.progress.moved, done.used_before, m.used, took.count()});
  }
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
      // A round of eviction in progress goes on at once (it yielded to writes). Otherwise: at
      // once for a write someone waits for; within kLazyWriteWindow of the first queued write
      // when all are lazy (those that come meanwhile share the transaction); after
      // kAccessFoldInterval with nothing queued (the access fold).
      while (!round_ && !stopping_ && eager_queued_ == 0) {
        if (!queue_.empty()) {
          const auto due = queued_since_ + kLazyWriteWindow;
          if (std::chrono::steady_clock::now() >= due) break;
          wake_.wait_until(lock, due);
        } else if (wake_.wait_for(lock, kAccessFoldInterval) == std::cv_status::timeout &&
                   queue_.empty()) {
          break;
        }
      }
      if (stopping_ && queue_.empty()) {
        lock.unlock();
        fold_accesses();
        return;
      }
      jobs.assign(std::make_move_iterator(queue_.begin()), std::make_move_iterator(queue_.end()));
      queue_.clear();
      eager_queued_ = 0;
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
        // (A round in progress is finished first, to its own target.)
        evict(0, std::min(static_cast<std::uint64_t>(options_.max_size * (kEvictDownTo - 0.1)),
                          map_bytes_ / 2),
              /*second_chances=*/false, /*yield=*/false);
      }
      for (std::size_t i = 0; i < jobs.size(); ++i) results[i] = commit_jobs({&jobs[i], 1});
    }
    report(jobs, results);
    for (std::size_t i = 0; i < jobs.size(); ++i) {
      if (results[i] != MDB_SUCCESS) ++write_failures_;
      if (jobs[i].done) {
        jobs[i].done(results[i] ? std::error_code(results[i], lmdb_category()) : std::error_code());
      }
    }
    {
      std::lock_guard lock(mutex_);
      committed_ += jobs.size();
    }
    flushed_.notify_all();
    // After the callbacks: the request whose write crossed the mark does not wait for the round
    // (at a million keys one took 17.7 s before its answer went out).
    evict_if_needed();
  }
}

}  // namespace hkpgw::cache
