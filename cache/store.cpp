#include "cache/store.hpp"

#include <fcntl.h>
#include <lmdb.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <set>
#include <tuple>

#include "cache/codec.hpp"
#include "cache/lmdb.hpp"
#include "cache/tables.hpp"
#include "config/named_thread.hpp"
#include "hkp/text.hpp"

namespace hkpgw::cache {

using namespace detail;
using lmdb::Cursor;
using lmdb::Table;
using lmdb::Txn;
static_assert(std::is_same_v<std::array<unsigned, 6>, lmdb::Handles>,
              "store.hpp holds the handles without including lmdb.h");

namespace {

class LmdbCategory final : public std::error_category {
 public:
  const char* name() const noexcept override { return "lmdb"; }
  std::string message(int rc) const override { return mdb_strerror(rc); }
};



std::int64_t system_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

const std::error_category& lmdb_category() {
  static const LmdbCategory category;
  return category;
}

Store::Store(const StoreOptions& options) : options_(options) {
  if (!options_.now) options_.now = system_now;
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!options_.read_only) fs::create_directories(options_.path, ec);
  if (!fs::is_directory(options_.path)) {
    throw StoreError("cache.path \"" + options_.path + "\" is not a directory" +
                     (ec ? " (" + ec.message() + ")" : std::string()));
  }
  if (!options_.read_only) {
    // One writing process per cache: a second gateway, or `cache import` next to a running
    // gateway, is refused here with a clear message instead of racing on eviction and LRU state.
    const std::string lock_path = options_.path + "/gateway.lock";
    lock_fd_ = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0640);
    if (lock_fd_ < 0 || ::flock(lock_fd_, LOCK_EX | LOCK_NB) != 0) {
      const int err = errno;
      if (lock_fd_ >= 0) ::close(lock_fd_);
      lock_fd_ = -1;
      throw StoreError("cache \"" + options_.path + "\" is in use by another process (" +
                       std::strerror(err) +
                       "): stop the gateway first; stats, verify and export work while it runs");
    }
  }
  try {
    open_tables(options_.path);
  } catch (...) {
    if (env_) mdb_env_close(env_);
    env_ = nullptr;
    if (lock_fd_ >= 0) ::close(lock_fd_);
    throw;
  }
  // Named for top -H, perf and ps -T.
  if (!options_.read_only) {
    writer_ = named_thread("hkpgw-writer", [this] { writer_loop(); });
  }
  if (options_.warm_up) {
    warm_up_ = named_thread("hkpgw-warm-up", [this] { warm_up(); });
  }
}

namespace {

std::uint64_t memory_available() {  // bytes; 0 when unknown
  std::FILE* f = std::fopen("/proc/meminfo", "r");
  if (!f) return 0;
  char line[256];
  unsigned long long kib = 0;
  while (std::fgets(line, sizeof line, f)) {
    if (std::sscanf(line, "MemAvailable: %llu kB", &kib) == 1) break;
  }
  std::fclose(f);
  return kib * 1024;
}

}  // namespace

void Store::warm_up() const {
  int fd = -1;
  if (mdb_env_get_fd(env_, &fd) != MDB_SUCCESS || fd < 0) return;
  struct stat st{};
  if (::fstat(fd, &st) != 0) return;
  const auto size = static_cast<std::uint64_t>(st.st_size);
  if (size == 0 || size > memory_available() / 2) return;  // would push out more than it brings
  // Asks the kernel to read the whole file ahead; the lookups meanwhile are served as before.
  ::posix_fadvise(fd, 0, 0, POSIX_FADV_WILLNEED);
}

// LMDB maps data.mdb and trusts its meta pages: a file cut short (a full disk during a copy, a
// restore that stopped) makes the first read of a page past its end a SIGBUS, which killed the
// gateway and `cache verify` with no word. The meta page says how many pages the file holds;
// a shorter file is refused here, before any page is read.
void Store::check_file_length(const std::string& path) const {
  MDB_envinfo info{};
  MDB_stat stat{};
  struct ::stat st {};
  const std::string file = path + "/data.mdb";
  if (mdb_env_info(env_, &info) != 0 || mdb_env_stat(env_, &stat) != 0 ||
      ::stat(file.c_str(), &st) != 0) {
    return;  // nothing to compare: the transaction below reports what is wrong
  }
  const std::uint64_t needed = (static_cast<std::uint64_t>(info.me_last_pgno) + 1) * stat.ms_psize;
  if (static_cast<std::uint64_t>(st.st_size) >= needed) return;
  throw StoreError("cache \"" + path + "\": data.mdb is truncated: " +
                   std::to_string(st.st_size) + " bytes, its meta page says " +
                   std::to_string(needed) +
                   "; stop the gateway and move the directory aside (or restore a backup): a "
                   "new cache starts empty and refills from the upstreams (keys that were only "
                   "here, uploads not yet forwarded, are lost)");
}

void Store::open_tables(const std::string& path) {
  auto fail = [&](const std::string& what, int rc) {
    throw StoreError("cache \"" + path + "\": " + what + ": " + mdb_strerror(rc));
  };
  int rc = mdb_env_create(&env_);
  if (rc) fail("cannot create the LMDB environment", rc);
  mdb_env_set_maxdbs(env_, 12);  // schema 4's tables, and those of older schemas to migrate
  mdb_env_set_maxreaders(env_, 1024);
  // The map is address space only; the file grows with use. Twice max_size leaves room for
  // LMDB's copy-on-write pages while eviction keeps the data near max_size.
  map_bytes_ = options_.map_bytes ? options_.map_bytes
                                  : std::max<std::uint64_t>(options_.max_size * 2, 64ULL << 20);
  mdb_env_set_mapsize(env_, static_cast<std::size_t>(map_bytes_));
  // NOTLS: read transactions are not tied to threads (coroutines hop threads between requests).
  const unsigned flags = MDB_NOTLS | MDB_NORDAHEAD | (options_.read_only ? MDB_RDONLY : 0);
  rc = mdb_env_open(env_, path.c_str(), flags, 0640);
  if (rc == MDB_INVALID || rc == MDB_VERSION_MISMATCH) {
    fail("data.mdb is not an LMDB cache this build can read (foreign or corrupt file?)", rc);
  } else if (rc == ENOENT && options_.read_only) {
    fail("no cache here", rc);
  } else if (rc) {
    fail("cannot open", rc);
  }
  check_file_length(path);
  Txn txn(env_, tables_, options_.read_only ? Txn::Mode::read : Txn::Mode::write);
  if (!txn) fail("cannot begin a transaction", txn.error());

  const unsigned create = options_.read_only ? 0 : MDB_CREATE;
  auto open = [&](const lmdb::TableSpec& spec) {
    return mdb_dbi_open(txn.raw(), spec.name, create | spec.flags,
                        &tables_[static_cast<unsigned>(spec.table)]);
  };
  // Reading the schema first: a cache from an older build has fewer tables.
  rc = open(lmdb::kTables[0]);
  if (rc == MDB_NOTFOUND) fail("not an hkp-gateway cache (no meta table)", rc);
  if (rc) fail("not an hkp-gateway cache (cannot open its tables)", rc);
  int schema = 0;
  if (const auto v = txn.get(Table::meta, kSchemaKey)) {
    const std::string text(*v);
    schema = std::atoi(text.c_str());
    if (schema <= 0) fail("not an hkp-gateway cache (schema \"" + text + "\")", MDB_INVALID);
  }
  if (schema > kSchemaVersion) {
    throw StoreError("cache \"" + path + "\" has schema version " + std::to_string(schema) +
                     ", written by a newer build; this build reads versions up to " +
                     std::to_string(kSchemaVersion));
  }
  opened_schema_ = schema == 0 ? kSchemaVersion : schema;
  if (options_.read_only && schema != kSchemaVersion) {
    throw StoreError("cache \"" + path + "\" has schema version " + std::to_string(schema) +
                     "; open it once read-write (start the gateway) to migrate it");
  }
  for (const auto& spec : lmdb::kTables) {  // outbox since schema 3
    if (spec.table != Table::meta && (rc = open(spec))) {
      fail("not an hkp-gateway cache (cannot open its tables)", rc);
    }
  }
  if (!options_.read_only) {
    if (schema >= 1 && schema < 4) migrate_to_4(txn, schema);
    if (schema != kSchemaVersion && (rc = txn.put(Table::meta, kSchemaKey, std::to_string(kSchemaVersion)))) {
      fail("cannot initialise", rc);
    }
  }
  {  // Records are appended: the writer numbers them on from the last one.
    Cursor last(txn, Table::records);
    if (last && last.last() && last.key().size() == kRecordKeyBytes) {
      next_record_ = record_number(last.key()) + 1;
    }
  }
  // Committing (not aborting) keeps the table handles open for later transactions.
  if ((rc = txn.commit())) fail("cannot open its tables", rc);
}

void Store::migrate_to_4(Txn& txn, int schema) {
  const auto fail = [&](const std::string& what, int rc) {
    // The old tables are dropped in the same transaction, after the copy: for a while both
    // copies are in the map.
    const std::string hint = rc == MDB_MAP_FULL
                                 ? " (the migration holds two copies of the keys at once: start "
                                   "once with a larger cache.max_size)"
                                 : "";
    throw StoreError("cache \"" + options_.path + "\": cannot migrate from schema " +
                     std::to_string(schema) + ": " + what + ": " + mdb_strerror(rc) + hint);
  };
  MDB_dbi old_keys = 0, stamps = 0, lru = 0;
  if (const int rc = mdb_dbi_open(txn.raw(), "keys", 0, &old_keys)) fail("no keys table", rc);
  const bool has_stamps = mdb_dbi_open(txn.raw(), "stamps", 0, &stamps) == MDB_SUCCESS;
  const bool has_lru = mdb_dbi_open(txn.raw(), "lru", 0, &lru) == MDB_SUCCESS;
  struct Old {
    std::int64_t accessed_at, fetched_at;
    Fingerprint fpr;
  };
  std::vector<Old> all;
  {
    MDB_cursor* c = nullptr;
    if (const int rc = mdb_cursor_open(txn.raw(), old_keys, &c)) fail("cannot read keys", rc);
    MDB_val k, v;
    for (int rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == MDB_SUCCESS;
         rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
      const auto fpr = Fingerprint::from_bytes(lmdb::view(k));
      const auto record = decode_key_record(lmdb::view(v));
      if (!fpr || !record) continue;  // unreadable then, unreadable now: `verify` said so
      Old o{record->fetched_at, record->fetched_at, *fpr};  // schema 1 kept no stamps
      MDB_val sv;
      if (has_stamps && mdb_get(txn.raw(), stamps, &k, &sv) == MDB_SUCCESS && sv.mv_size == 16) {
        const std::string_view b = lmdb::view(sv);
        o.fetched_at = static_cast<std::int64_t>(codec::get_le(b, 8));
        o.accessed_at = static_cast<std::int64_t>(codec::get_le(b.substr(8), 8));
      }
      all.push_back(o);
    }
    mdb_cursor_close(c);
  }
  // Records in LRU order, least recent first: eviction takes them in the order they had.
  std::sort(all.begin(), all.end(), [](const Old& a, const Old& b) {
    return std::tie(a.accessed_at, a.fpr) < std::tie(b.accessed_at, b.fpr);
  });
  std::vector<std::pair<Fingerprint, Slot>> slots;
  slots.reserve(all.size());
  std::string value;
  for (const auto& o : all) {
    MDB_val k = lmdb::val(o.fpr.bytes()), v;
    if (const int rc = mdb_get(txn.raw(), old_keys, &k, &v)) fail("cannot read a key", rc);
    value.assign(o.fpr.bytes());
    value.append(lmdb::view(v));
    std::uint64_t number = 0;
    if (const int rc = place(txn, value, number)) fail("cannot write a record", rc);
    slots.emplace_back(o.fpr, Slot{number, o.fetched_at, o.accessed_at, o.accessed_at});
  }
  // In LMDB's order (bytes compared unsigned, as string_view does; Fingerprint's own order
  // compares chars, which may be signed), so every slot is an append.
  std::sort(slots.begin(), slots.end(),
            [](const auto& a, const auto& b) { return a.first.bytes() < b.first.bytes(); });
  for (const auto& [fpr, slot] : slots) {
    if (const int rc = txn.put(Table::keys, fpr.bytes(), encode_slot(slot), MDB_APPEND)) {
      fail("cannot write a slot", rc);
    }
  }
  for (const auto& [dbi, present] : {std::pair{old_keys, true}, std::pair{stamps, has_stamps},
                                     std::pair{lru, has_lru}}) {
    if (!present) continue;
    if (const int rc = mdb_drop(txn.raw(), dbi, 1)) fail("cannot drop an old table", rc);
  }
}

int Store::place(Txn& txn, std::string_view value, std::uint64_t& number) {
  number = next_record_;
  const int rc = txn.put(Table::records, record_key(number), value, MDB_APPEND);
  if (rc == MDB_SUCCESS) ++next_record_;
  return rc;
}

Store::~Store() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (writer_.joinable()) writer_.join();
  if (warm_up_.joinable()) warm_up_.join();
  if (env_) mdb_env_close(env_);
  if (lock_fd_ >= 0) ::close(lock_fd_);
}

namespace {

// The record behind `slot` as a view, its times taken from the slot.
bool read_record(const Txn& txn, const Fingerprint& fpr, const Slot& slot,
                 const Store::Visitor& fn) {
  const auto rec = get_record(txn, fpr.bytes(), slot);
  if (!rec) return false;
  auto r = decode_key_record(*rec);
  if (!r) return false;
  r->fingerprint = fpr;
  r->fetched_at = slot.fetched_at;
  r->accessed_at = slot.accessed_at;
  fn(*r);
  return true;
}

bool read_key(const Txn& txn, std::string_view fpr, const Store::Visitor& fn) {
  const auto slot = get_slot(txn, fpr);
  const auto f = Fingerprint::from_bytes(fpr);
  return slot && f && read_record(txn, *f, *slot, fn);
}

}  // namespace

std::size_t Store::visit(const hkp::Search& search, const Visitor& fn) const {
  const auto ikey = index_key_of(search);
  if (!ikey) return 0;
  Txn t(env_, tables_, Txn::Mode::read);
  Cursor ids(t, Table::ids);
  std::size_t n = 0;
  for (bool more = ids.at(*ikey); more; more = ids.next_dup()) n += read_key(t, ids.value(), fn);
  return n;
}

std::size_t Store::visit_fingerprints(std::span<const Fingerprint> fingerprints,
                                      const Visitor& fn) const {
  Txn t(env_, tables_, Txn::Mode::read);
  if (!t) return 0;
  std::size_t n = 0;
  for (const auto& f : fingerprints) n += read_key(t, f.bytes(), fn);
  return n;
}

std::size_t Store::visit_text(std::string_view needle, std::size_t limit, const Visitor& fn,
                              std::size_t max_scanned) const {
  if (needle.empty()) return 0;
  Txn t(env_, tables_, Txn::Mode::read);
  Cursor ids(t, Table::ids);
  std::set<std::string, std::less<>> seen;
  std::size_t scanned = 0;
  for (bool more = ids.at_or_after("E"); more && seen.size() < limit && scanned++ < max_scanned;
       more = ids.next()) {
    const std::string_view key = ids.key();
    if (!key.starts_with('E')) break;
    if (key.substr(1).find(needle) == std::string_view::npos) continue;
    if (!seen.insert(std::string(ids.value())).second) continue;
    read_key(t, ids.value(), fn);
  }
  return seen.size();
}

std::size_t Store::visit_all(const Visitor& fn) const {
  Txn t(env_, tables_, Txn::Mode::read);
  Cursor records(t, Table::records);
  std::size_t n = 0;
  for (bool more = records.first(); more; more = records.next()) {
    if (records.key().size() != kRecordKeyBytes) continue;
    const auto owner = record_owner(t, record_number(records.key()), records.value());
    const auto fpr = owner ? Fingerprint::from_bytes(owner->fingerprint) : std::nullopt;
    if (!fpr) continue;  // not a key's current record
    n += read_record(t, *fpr, owner->slot, fn);
  }
  return n;
}

std::vector<Store::KeyTimes> Store::key_times(const std::optional<Fingerprint>& after,
                                              std::size_t n) const {
  std::vector<KeyTimes> out;
  Txn t(env_, tables_, Txn::Mode::read);
  if (!t) return out;
  Cursor slots(t, Table::keys);
  bool more = after ? slots.at_or_after(after->bytes()) : slots.first();
  if (more && after && slots.key() == after->bytes()) more = slots.next();
  for (; more && out.size() < n; more = slots.next()) {
    const auto fpr = Fingerprint::from_bytes(slots.key());
    const auto slot = decode_slot(slots.value());
    if (fpr && slot) out.push_back({*fpr, slot->fetched_at, slot->accessed_at});
  }
  return out;
}

std::optional<QueryRecord> Store::get_query(std::string_view key) const {
  Txn t(env_, tables_, Txn::Mode::read);
  if (!t) return std::nullopt;
  const auto v = t.get(Table::queries, key);
  return v ? decode_query_record(*v) : std::nullopt;
}

std::vector<OutboxEntry> Store::outbox() const {
  std::vector<OutboxEntry> out;
  Txn t(env_, tables_, Txn::Mode::read);
  Cursor c(t, Table::outbox);
  for (bool more = c.first(); more; more = c.next()) {
    if (auto e = decode_outbox(c.key(), c.value())) out.push_back(std::move(*e));
  }
  return out;
}

std::uint64_t Store::used_bytes(const Txn& txn) const {
  std::uint64_t pages = 0, psize = 4096;
  MDB_stat st;
  if (mdb_env_stat(env_, &st) == MDB_SUCCESS) psize = st.ms_psize;
  if (mdb_stat(txn.raw(), 0, &st) == MDB_SUCCESS) {  // the main table, which names the others
    pages += st.ms_branch_pages + st.ms_leaf_pages + st.ms_overflow_pages;
  }
  for (const auto& spec : lmdb::kTables) {
    if (const auto s = txn.stat(spec.table)) {
      pages += s->ms_branch_pages + s->ms_leaf_pages + s->ms_overflow_pages;
    }
  }
  return pages * psize;
}

StoreStats Store::stats() const {
  StoreStats s;
  s.max_bytes = options_.max_size;
  s.evicted = evicted_.load();
  s.second_chances = moved_.load();
  s.write_failures = write_failures_.load();
  s.schema = kSchemaVersion;
  Txn t(env_, tables_, Txn::Mode::read);
  if (!t) return s;
  s.keys = t.entries(Table::keys);
  s.identifiers = t.entries(Table::ids);
  s.queries = t.entries(Table::queries);
  s.outbox = t.entries(Table::outbox);
  s.used_bytes = used_bytes(t);
  std::error_code ec;
  const auto size = std::filesystem::file_size(options_.path + "/data.mdb", ec);
  if (!ec) s.file_bytes = size;
  return s;
}

bool Store::readable() const { return static_cast<bool>(Txn(env_, tables_, Txn::Mode::read)); }

std::vector<std::string> Store::verify() const {
  std::vector<std::string> problems;
  Txn t(env_, tables_, Txn::Mode::read);
  if (!t) return {"cannot open a read transaction"};
  // Every slot leads to its record, which decodes, and every identifier it carries points back
  // to it. Lookups, not sets: verify's memory does not grow with the cache.
  Cursor kc(t, Table::keys), ic(t, Table::ids), rc(t, Table::records);
  if (!kc || !ic || !rc) return {"cannot open a cursor"};
  for (bool more = kc.first(); more; more = kc.next()) {
    const std::string_view fpr = kc.key();
    const std::string hex = hkp::hex_upper(fpr);
    const auto slot = decode_slot(kc.value());
    if (!Fingerprint::from_bytes(fpr) || !slot) {
      problems.push_back("key " + hex + ": slot does not decode");
      continue;
    }
    const auto whole = t.get(Table::records, record_key(slot->record));
    if (!whole || !whole->starts_with(fpr)) {
      problems.push_back("key " + hex + ": record " + std::to_string(slot->record) +
                         (whole ? " belongs to another key" : " missing"));
      continue;
    }
    auto r = decode_key_record(whole->substr(fpr.size()));
    if (!r) {
      problems.push_back("key " + hex + ": record does not decode");
      continue;
    }
    auto info = decode_key_info(r->info_bytes);
    if (!info || info->fingerprint != hex) {
      problems.push_back("key " + hex + ": info does not decode or names another fingerprint");
      continue;
    }
    if (r->packets.empty()) problems.push_back("key " + hex + ": no packets");
    for (const auto& id : index_keys(*info)) {
      if (!ic.at(id, fpr)) {
        problems.push_back("key " + hex + ": identifier " + std::string(1, id[0]) + " entry missing");
      }
    }
  }
  // Every identifier points to a key that exists.
  for (bool more = ic.first(); more; more = ic.next()) {
    if (!t.get(Table::keys, ic.value())) {
      problems.push_back("identifier entry points to missing key " + hkp::hex_upper(ic.value()));
    }
  }
  // Every record is its key's current one (a leftover takes space until eviction reaches it).
  for (bool more = rc.first(); more; more = rc.next()) {
    const auto k = rc.key();
    if (k.size() != kRecordKeyBytes || !record_owner(t, record_number(k), rc.value())) {
      const std::string number =
          k.size() == kRecordKeyBytes ? std::to_string(record_number(k)) : "?";
      problems.push_back("record " + number + " belongs to no key");
    }
  }
  Cursor qc(t, Table::queries);
  for (bool more = qc.first(); more; more = qc.next()) {
    if (!decode_query_record(qc.value())) {
      problems.push_back("query record \"" + std::string(qc.key()).substr(0, 80) + "\" does not decode");
    }
  }
  return problems;
}

void Store::note_access(const Fingerprint& fingerprint, std::int64_t accessed_at) {
  if (options_.read_only) return;
  // Recorded recently enough: nothing to write, and no lock taken (the hot key's common case).
  if (accessed_at > 0 && options_.now() - accessed_at < options_.access_granularity) return;
  std::lock_guard lock(access_mutex_);
  if (accesses_.size() < kMaxPendingAccesses) {
    if (accesses_.capacity() == 0) accesses_.reserve(1024);
    accesses_.push_back(fingerprint);
  }
}

void Store::write(WriteBatch batch, Done done) {
  {
    std::lock_guard lock(mutex_);
    if (queue_.empty()) queued_since_ = std::chrono::steady_clock::now();
    if (!batch.lazy) ++eager_queued_;
    queue_.push_back(Job{std::move(batch), std::move(done)});
    ++queued_;
  }
  wake_.notify_one();
}

std::error_code Store::write_and_wait(WriteBatch batch) {
  std::error_code result;
  write(std::move(batch), [&result](std::error_code ec) { result = ec; });
  flush();  // `done` has run once flush() returns (committed_ moves after the callbacks)
  return result;
}

int Store::copy_compacted(const std::string& dir) {
  flush();
  return mdb_env_copy2(env_, dir.c_str(), MDB_CP_COMPACT);
}

int Store::copy_to(int fd) {
  flush();
  return mdb_env_copyfd2(env_, fd, MDB_CP_COMPACT);
}

void Store::flush() {
  if (options_.read_only) return;
  std::unique_lock lock(mutex_);
  const std::uint64_t target = queued_;
  flushed_.wait(lock, [&] { return committed_ >= target; });
}

}  // namespace hkpgw::cache
