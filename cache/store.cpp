#include "cache/store.hpp"

#include <fcntl.h>
#include <lmdb.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <map>
#include <set>

#include "cache/lmdb_codec.hpp"

namespace hkpgw::cache {

using namespace detail;

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
  if (!options_.read_only) writer_ = std::thread([this] { writer_loop(); });
}

void Store::open_tables(const std::string& path) {
  auto fail = [&](const std::string& what, int rc) {
    throw StoreError("cache \"" + path + "\": " + what + ": " + mdb_strerror(rc));
  };
  int rc = mdb_env_create(&env_);
  if (rc) fail("cannot create the LMDB environment", rc);
  mdb_env_set_maxdbs(env_, 8);
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
  MDB_txn* txn = nullptr;
  rc = mdb_txn_begin(env_, nullptr, options_.read_only ? MDB_RDONLY : 0, &txn);
  if (rc) fail("cannot begin a transaction", rc);
  struct Abort {
    MDB_txn*& t;
    ~Abort() {
      if (t) mdb_txn_abort(t);
    }
  } abort{txn};

  const unsigned create = options_.read_only ? 0 : MDB_CREATE;
  // Reading the schema first: a cache from an older build has fewer tables.
  rc = mdb_dbi_open(txn, "meta", create, &meta_dbi_);
  if (rc == MDB_NOTFOUND) fail("not an hkp-gateway cache (no meta table)", rc);
  if (rc) fail("not an hkp-gateway cache (cannot open its tables)", rc);
  MDB_val k = val(kSchemaKey), v;
  rc = mdb_get(txn, meta_dbi_, &k, &v);
  int schema = 0;
  if (rc == MDB_SUCCESS) {
    const std::string text(view(v));
    schema = std::atoi(text.c_str());
    if (schema <= 0) fail("not an hkp-gateway cache (schema \"" + text + "\")", MDB_INVALID);
  } else if (rc != MDB_NOTFOUND) {
    fail("cannot read the schema version", rc);
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
  rc = mdb_dbi_open(txn, "keys", create, &keys_dbi_);
  if (!rc) rc = mdb_dbi_open(txn, "ids", create | MDB_DUPSORT, &ids_dbi_);
  if (!rc) rc = mdb_dbi_open(txn, "queries", create, &queries_dbi_);
  if (!rc) rc = mdb_dbi_open(txn, "stamps", create, &stamps_dbi_);
  if (!rc) rc = mdb_dbi_open(txn, "lru", create, &lru_dbi_);
  if (!rc) rc = mdb_dbi_open(txn, "outbox", create, &outbox_dbi_);  // since schema 3
  if (rc) fail("not an hkp-gateway cache (cannot open its tables)", rc);
  if (options_.read_only) {
    // Committing (not aborting) keeps the table handles open for later transactions.
    rc = mdb_txn_commit(txn);
    txn = nullptr;
    if (rc) fail("cannot open its tables", rc);
    return;
  }

  if (schema == 1) {
    // Version 1 kept no stamps: every key gets one from its record, accessed = fetched.
    MDB_cursor* cur = nullptr;
    rc = mdb_cursor_open(txn, keys_dbi_, &cur);
    if (rc) fail("cannot migrate", rc);
    MDB_val fk, rec;
    for (int c = mdb_cursor_get(cur, &fk, &rec, MDB_FIRST); c == MDB_SUCCESS;
         c = mdb_cursor_get(cur, &fk, &rec, MDB_NEXT)) {
      const auto r = decode_key_record(view(rec));
      const std::int64_t t = r ? r->fetched_at : options_.now();
      const std::string stamp = encode_stamp({t, t});
      const std::string lk = lru_key(t, view(fk));
      MDB_val sk = fk, sv = val(stamp), lkv = val(lk), empty{0, nullptr};
      rc = mdb_put(txn, stamps_dbi_, &sk, &sv, 0);
      if (!rc) rc = mdb_put(txn, lru_dbi_, &lkv, &empty, 0);
      if (rc) {
        mdb_cursor_close(cur);
        fail("cannot migrate", rc);
      }
    }
    mdb_cursor_close(cur);
  }
  if (schema != kSchemaVersion) {
    const std::string current = std::to_string(kSchemaVersion);
    MDB_val sv = val(current);
    rc = mdb_put(txn, meta_dbi_, &k, &sv, 0);
    if (rc) fail("cannot initialise", rc);
  }
  rc = mdb_txn_commit(txn);
  txn = nullptr;
  if (rc) fail("cannot initialise", rc);
}

Store::~Store() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (writer_.joinable()) writer_.join();
  if (env_) mdb_env_close(env_);
  if (lock_fd_ >= 0) ::close(lock_fd_);
}

namespace {

// The record of `fpr` as a view, with fetched_at taken from its stamp when it has one.
bool read_key(MDB_txn* txn, unsigned keys_dbi, unsigned stamps_dbi, MDB_val fpr,
              const Store::Visitor& fn) {
  MDB_val rec;
  if (mdb_get(txn, keys_dbi, &fpr, &rec) != MDB_SUCCESS) return false;
  auto r = decode_key_record(view(rec));
  if (!r) return false;
  r->fingerprint = view(fpr);
  MDB_val st;
  if (mdb_get(txn, stamps_dbi, &fpr, &st) == MDB_SUCCESS) {
    if (auto s = decode_stamp(view(st))) r->fetched_at = s->fetched_at;
  }
  fn(*r);
  return true;
}

}  // namespace

std::size_t Store::visit(const hkp::Search& search, const Visitor& fn) const {
  const auto ikey = index_key_of(search);
  if (!ikey) return 0;
  ReadTxn t(env_);
  if (!t.txn) return 0;
  MDB_cursor* cur = nullptr;
  if (mdb_cursor_open(t.txn, ids_dbi_, &cur) != MDB_SUCCESS) return 0;
  std::size_t n = 0;
  MDB_val k = val(*ikey), fpr;
  for (int rc = mdb_cursor_get(cur, &k, &fpr, MDB_SET_KEY); rc == MDB_SUCCESS;
       rc = mdb_cursor_get(cur, &k, &fpr, MDB_NEXT_DUP)) {
    n += read_key(t.txn, keys_dbi_, stamps_dbi_, fpr, fn);
  }
  mdb_cursor_close(cur);
  return n;
}

std::size_t Store::visit_fingerprints(std::span<const std::string> fingerprints,
                                      const Visitor& fn) const {
  ReadTxn t(env_);
  if (!t.txn) return 0;
  std::size_t n = 0;
  for (const auto& hex : fingerprints) {
    const std::string b = fingerprint_bytes(hex);
    if (b.empty()) continue;
    n += read_key(t.txn, keys_dbi_, stamps_dbi_, val(b), fn);
  }
  return n;
}

std::size_t Store::visit_text(std::string_view needle, std::size_t limit,
                              const Visitor& fn) const {
  ReadTxn t(env_);
  if (!t.txn || needle.empty()) return 0;
  MDB_cursor* cur = nullptr;
  if (mdb_cursor_open(t.txn, ids_dbi_, &cur) != MDB_SUCCESS) return 0;
  std::set<std::string, std::less<>> seen;
  MDB_val k = val("E"), fpr;
  for (int rc = mdb_cursor_get(cur, &k, &fpr, MDB_SET_RANGE);
       rc == MDB_SUCCESS && seen.size() < limit; rc = mdb_cursor_get(cur, &k, &fpr, MDB_NEXT)) {
    const std::string_view key = view(k);
    if (!key.starts_with('E')) break;
    if (key.substr(1).find(needle) == std::string_view::npos) continue;
    if (!seen.insert(std::string(view(fpr))).second) continue;
    read_key(t.txn, keys_dbi_, stamps_dbi_, fpr, fn);
  }
  mdb_cursor_close(cur);
  return seen.size();
}

std::size_t Store::visit_all(const Visitor& fn) const {
  ReadTxn t(env_);
  if (!t.txn) return 0;
  MDB_cursor* cur = nullptr;
  if (mdb_cursor_open(t.txn, keys_dbi_, &cur) != MDB_SUCCESS) return 0;
  std::size_t n = 0;
  MDB_val fk, rec;
  for (int rc = mdb_cursor_get(cur, &fk, &rec, MDB_FIRST); rc == MDB_SUCCESS;
       rc = mdb_cursor_get(cur, &fk, &rec, MDB_NEXT)) {
    n += read_key(t.txn, keys_dbi_, stamps_dbi_, fk, fn);
  }
  mdb_cursor_close(cur);
  return n;
}

std::optional<QueryRecord> Store::get_query(std::string_view key) const {
  ReadTxn t(env_);
  if (!t.txn) return std::nullopt;
  MDB_val k = val(key), v;
  if (mdb_get(t.txn, queries_dbi_, &k, &v) != MDB_SUCCESS) return std::nullopt;
  return decode_query_record(view(v));
}

std::vector<OutboxEntry> Store::outbox() const {
  std::vector<OutboxEntry> out;
  ReadTxn t(env_);
  if (!t.txn) return out;
  MDB_cursor* cur = nullptr;
  if (mdb_cursor_open(t.txn, outbox_dbi_, &cur) != MDB_SUCCESS) return out;
  MDB_val k, v;
  for (int rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == MDB_SUCCESS;
       rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
    if (auto e = decode_outbox(view(k), view(v))) out.push_back(std::move(*e));
  }
  mdb_cursor_close(cur);
  return out;
}

std::uint64_t Store::used_bytes(void* raw_txn) const {
  auto* txn = static_cast<MDB_txn*>(raw_txn);
  std::uint64_t pages = 0, psize = 4096;
  MDB_stat st;
  if (mdb_env_stat(env_, &st) == MDB_SUCCESS) psize = st.ms_psize;
  for (unsigned dbi : {0u, keys_dbi_, ids_dbi_, queries_dbi_, meta_dbi_, stamps_dbi_, lru_dbi_,
                       outbox_dbi_}) {
    if (mdb_stat(txn, dbi, &st) == MDB_SUCCESS) {
      pages += st.ms_branch_pages + st.ms_leaf_pages + st.ms_overflow_pages;
    }
  }
  return pages * psize;
}

StoreStats Store::stats() const {
  StoreStats s;
  s.max_bytes = options_.max_size;
  s.evicted = evicted_.load();
  s.schema = kSchemaVersion;
  ReadTxn t(env_);
  if (!t.txn) return s;
  MDB_stat st;
  if (mdb_stat(t.txn, keys_dbi_, &st) == MDB_SUCCESS) s.keys = st.ms_entries;
  if (mdb_stat(t.txn, ids_dbi_, &st) == MDB_SUCCESS) s.identifiers = st.ms_entries;
  if (mdb_stat(t.txn, queries_dbi_, &st) == MDB_SUCCESS) s.queries = st.ms_entries;
  if (mdb_stat(t.txn, outbox_dbi_, &st) == MDB_SUCCESS) s.outbox = st.ms_entries;
  s.used_bytes = used_bytes(t.txn);
  std::error_code ec;
  const auto size = std::filesystem::file_size(options_.path + "/data.mdb", ec);
  if (!ec) s.file_bytes = size;
  return s;
}

bool Store::readable() const { return ReadTxn(env_).txn != nullptr; }

std::vector<std::string> Store::verify() const {
  std::vector<std::string> problems;
  ReadTxn t(env_);
  if (!t.txn) return {"cannot open a read transaction"};
  std::set<std::string> keys;
  // Every key record decodes, and every identifier it carries points back to it.
  MDB_cursor* cur = nullptr;
  mdb_cursor_open(t.txn, keys_dbi_, &cur);
  MDB_val fk, rec;
  for (int rc = mdb_cursor_get(cur, &fk, &rec, MDB_FIRST); rc == MDB_SUCCESS;
       rc = mdb_cursor_get(cur, &fk, &rec, MDB_NEXT)) {
    const std::string fpr(view(fk));
    const std::string hex = fingerprint_hex(fpr);
    keys.insert(fpr);
    auto r = decode_key_record(view(rec));
    if (fpr.size() != 20 || !r) {
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
      MDB_val ik = val(id), iv = val(fpr);
      MDB_cursor* ic = nullptr;
      mdb_cursor_open(t.txn, ids_dbi_, &ic);
      if (mdb_cursor_get(ic, &ik, &iv, MDB_GET_BOTH) != MDB_SUCCESS) {
        problems.push_back("key " + hex + ": identifier " + std::string(1, id[0]) +
                           " entry missing");
      }
      mdb_cursor_close(ic);
    }
    MDB_val sv;
    if (mdb_get(t.txn, stamps_dbi_, &fk, &sv) != MDB_SUCCESS || !decode_stamp(view(sv))) {
      problems.push_back("key " + hex + ": no stamp");
    } else {
      const auto s = *decode_stamp(view(sv));
      const std::string lk = lru_key(s.accessed_at, fpr);
      MDB_val lkv = val(lk), lv;
      if (mdb_get(t.txn, lru_dbi_, &lkv, &lv) != MDB_SUCCESS) {
        problems.push_back("key " + hex + ": missing from the LRU order");
      }
    }
  }
  mdb_cursor_close(cur);
  // Every identifier points to a key that exists.
  mdb_cursor_open(t.txn, ids_dbi_, &cur);
  MDB_val ik, iv;
  for (int rc = mdb_cursor_get(cur, &ik, &iv, MDB_FIRST); rc == MDB_SUCCESS;
       rc = mdb_cursor_get(cur, &ik, &iv, MDB_NEXT)) {
    if (!keys.contains(std::string(view(iv)))) {
      problems.push_back("identifier entry points to missing key " + fingerprint_hex(view(iv)));
    }
  }
  mdb_cursor_close(cur);
  // Every LRU entry belongs to a key; every stamp too.
  mdb_cursor_open(t.txn, lru_dbi_, &cur);
  MDB_val lk, lv;
  for (int rc = mdb_cursor_get(cur, &lk, &lv, MDB_FIRST); rc == MDB_SUCCESS;
       rc = mdb_cursor_get(cur, &lk, &lv, MDB_NEXT)) {
    const auto k = view(lk);
    if (k.size() != 28 || !keys.contains(std::string(k.substr(8)))) {
      problems.push_back("LRU entry for a missing key");
    }
  }
  mdb_cursor_close(cur);
  mdb_cursor_open(t.txn, queries_dbi_, &cur);
  MDB_val qk, qv;
  for (int rc = mdb_cursor_get(cur, &qk, &qv, MDB_FIRST); rc == MDB_SUCCESS;
       rc = mdb_cursor_get(cur, &qk, &qv, MDB_NEXT)) {
    if (!decode_query_record(view(qv))) {
      problems.push_back("query record \"" + std::string(view(qk)).substr(0, 80) + "\" does not decode");
    }
  }
  mdb_cursor_close(cur);
  return problems;
}

void Store::note_access(std::string_view fingerprint) {
  if (fingerprint.size() != 20 || options_.read_only) return;
  std::array<char, 20> f;
  std::memcpy(f.data(), fingerprint.data(), 20);
  std::lock_guard lock(access_mutex_);
  if (accesses_.size() < kMaxPendingAccesses) {
    if (accesses_.capacity() == 0) accesses_.reserve(1024);
    accesses_.push_back(f);
  }
}

void Store::write(WriteBatch batch, Done done) {
  {
    std::lock_guard lock(mutex_);
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

void Store::flush() {
  if (options_.read_only) return;
  std::unique_lock lock(mutex_);
  const std::uint64_t target = queued_;
  flushed_.wait(lock, [&] { return committed_ >= target; });
}

}  // namespace hkpgw::cache
