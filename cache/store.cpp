#include "cache/store.hpp"

#include <lmdb.h>

#include <filesystem>
#include <set>

namespace hkpgw::cache {
namespace {

constexpr std::string_view kSchemaKey = "schema";
constexpr std::string_view kSchemaVersion = "1";
constexpr std::size_t kMaxEmailIndexBytes = 400;  // LMDB keys are at most 511 bytes

class LmdbCategory final : public std::error_category {
 public:
  const char* name() const noexcept override { return "lmdb"; }
  std::string message(int rc) const override { return mdb_strerror(rc); }
};

MDB_val val(std::string_view s) { return MDB_val{s.size(), const_cast<char*>(s.data())}; }
std::string_view view(const MDB_val& v) { return {static_cast<const char*>(v.mv_data), v.mv_size}; }

// Every index key of a key: 'F'+fpr (primary and subkeys), 'K'+64-bit id, 'S'+32-bit id,
// 'E'+email.
std::vector<std::string> index_keys(const hkp::KeyInfo& info) {
  std::vector<std::string> out;
  auto add_fpr = [&](const std::string& hex) {
    const std::string b = fingerprint_bytes(hex);
    if (b.empty()) return;
    out.push_back("F" + b);
    out.push_back("K" + b.substr(12));
    out.push_back("S" + b.substr(16));
  };
  add_fpr(info.fingerprint);
  for (const auto& s : info.subkeys) add_fpr(s.fingerprint);
  for (const auto& u : info.uids) {
    if (!u.email.empty() && u.email.size() <= kMaxEmailIndexBytes) out.push_back("E" + u.email);
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

std::optional<std::string> index_key_of(const hkp::Search& s) {
  using hkp::SearchKind;
  switch (s.kind) {
    case SearchKind::fingerprint: return "F" + fingerprint_bytes(s.value);
    case SearchKind::long_keyid: return "K" + fingerprint_bytes(std::string(24, '0') + s.value).substr(12);
    case SearchKind::short_keyid: return "S" + fingerprint_bytes(std::string(32, '0') + s.value).substr(16);
    case SearchKind::email:
      if (s.value.size() > kMaxEmailIndexBytes) return std::nullopt;
      return "E" + s.value;
    case SearchKind::text: return std::nullopt;
  }
  return std::nullopt;
}

struct ReadTxn {
  MDB_txn* txn = nullptr;
  explicit ReadTxn(MDB_env* env) {
    if (mdb_txn_begin(env, nullptr, MDB_RDONLY, &txn) != MDB_SUCCESS) txn = nullptr;
  }
  ~ReadTxn() {
    if (txn) mdb_txn_abort(txn);
  }
};

}  // namespace

const std::error_category& lmdb_category() {
  static const LmdbCategory category;
  return category;
}

Store::Store(const StoreOptions& options) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::create_directories(options.path, ec);
  if (!fs::is_directory(options.path)) {
    throw StoreError("cache.path \"" + options.path + "\" is not a directory" +
                     (ec ? " (" + ec.message() + ")" : std::string()));
  }
  auto fail = [&](const std::string& what, int rc) {
    if (env_) mdb_env_close(env_);
    env_ = nullptr;
    throw StoreError("cache \"" + options.path + "\": " + what + ": " + mdb_strerror(rc));
  };
  int rc = mdb_env_create(&env_);
  if (rc) fail("cannot create the LMDB environment", rc);
  mdb_env_set_maxdbs(env_, 8);
  mdb_env_set_maxreaders(env_, 1024);
  // The map is address space only; the file grows with use. Twice max_size leaves room for
  // LMDB's copy-on-write pages while eviction keeps the data near max_size.
  mdb_env_set_mapsize(env_, static_cast<std::size_t>(std::max<std::uint64_t>(options.max_size * 2, 64ULL << 20)));
  // NOTLS: read transactions are not tied to threads (coroutines hop threads between requests).
  rc = mdb_env_open(env_, options.path.c_str(), MDB_NOTLS | MDB_NORDAHEAD, 0640);
  if (rc == MDB_INVALID || rc == MDB_VERSION_MISMATCH) {
    fail("data.mdb is not an LMDB cache this build can read (foreign or corrupt file?)", rc);
  } else if (rc) {
    fail("cannot open", rc);
  }
  MDB_txn* txn = nullptr;
  rc = mdb_txn_begin(env_, nullptr, 0, &txn);
  if (rc) fail("cannot begin a write transaction", rc);
  rc = mdb_dbi_open(txn, "keys", MDB_CREATE, &keys_dbi_);
  if (!rc) rc = mdb_dbi_open(txn, "ids", MDB_CREATE | MDB_DUPSORT, &ids_dbi_);
  if (!rc) rc = mdb_dbi_open(txn, "queries", MDB_CREATE, &queries_dbi_);
  if (!rc) rc = mdb_dbi_open(txn, "meta", MDB_CREATE, &meta_dbi_);
  if (rc) {
    mdb_txn_abort(txn);
    fail("not an hkp-gateway cache (cannot open its tables)", rc);
  }
  MDB_val k = val(kSchemaKey), v;
  rc = mdb_get(txn, meta_dbi_, &k, &v);
  if (rc == MDB_NOTFOUND) {
    MDB_val sv = val(kSchemaVersion);
    rc = mdb_put(txn, meta_dbi_, &k, &sv, 0);
  } else if (rc == MDB_SUCCESS && view(v) != kSchemaVersion) {
    mdb_txn_abort(txn);
    if (env_) mdb_env_close(env_);
    env_ = nullptr;
    throw StoreError("cache \"" + options.path + "\" has schema version " + std::string(view(v)) +
                     "; this build reads version " + std::string(kSchemaVersion));
  }
  if (rc) {
    mdb_txn_abort(txn);
    fail("cannot initialise", rc);
  }
  rc = mdb_txn_commit(txn);
  if (rc) fail("cannot initialise", rc);
  writer_ = std::thread([this] { writer_loop(); });
}

Store::~Store() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (writer_.joinable()) writer_.join();
  if (env_) mdb_env_close(env_);
}

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
    MDB_val rec;
    if (mdb_get(t.txn, keys_dbi_, &fpr, &rec) != MDB_SUCCESS) continue;
    if (auto r = decode_key_record(view(rec))) {
      fn(*r);
      ++n;
    }
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
    MDB_val k = val(b), rec;
    if (mdb_get(t.txn, keys_dbi_, &k, &rec) != MDB_SUCCESS) continue;
    if (auto r = decode_key_record(view(rec))) {
      fn(*r);
      ++n;
    }
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
    MDB_val rec;
    if (mdb_get(t.txn, keys_dbi_, &fpr, &rec) != MDB_SUCCESS) continue;
    if (auto r = decode_key_record(view(rec))) fn(*r);
  }
  mdb_cursor_close(cur);
  return seen.size();
}

std::optional<QueryRecord> Store::get_query(std::string_view key) const {
  ReadTxn t(env_);
  if (!t.txn) return std::nullopt;
  MDB_val k = val(key), v;
  if (mdb_get(t.txn, queries_dbi_, &k, &v) != MDB_SUCCESS) return std::nullopt;
  return decode_query_record(view(v));
}

StoreStats Store::stats() const {
  StoreStats s;
  ReadTxn t(env_);
  if (!t.txn) return s;
  MDB_stat st;
  if (mdb_stat(t.txn, keys_dbi_, &st) == MDB_SUCCESS) s.keys = st.ms_entries;
  if (mdb_stat(t.txn, ids_dbi_, &st) == MDB_SUCCESS) s.identifiers = st.ms_entries;
  if (mdb_stat(t.txn, queries_dbi_, &st) == MDB_SUCCESS) s.queries = st.ms_entries;
  MDB_envinfo info;
  MDB_stat env_stat;
  if (mdb_env_info(env_, &info) == MDB_SUCCESS && mdb_env_stat(env_, &env_stat) == MDB_SUCCESS) {
    s.used_bytes = (info.me_last_pgno + 1) * static_cast<std::uint64_t>(env_stat.ms_psize);
    s.map_bytes = info.me_mapsize;
  }
  return s;
}

bool Store::readable() const { return ReadTxn(env_).txn != nullptr; }

void Store::write(WriteBatch batch, Done done) {
  {
    std::lock_guard lock(mutex_);
    queue_.push_back(Job{std::move(batch), std::move(done)});
    ++queued_;
  }
  wake_.notify_one();
}

void Store::flush() {
  std::unique_lock lock(mutex_);
  const std::uint64_t target = queued_;
  flushed_.wait(lock, [&] { return committed_ >= target; });
}

int Store::apply(void* raw_txn, const WriteBatch& batch) {
  auto* txn = static_cast<MDB_txn*>(raw_txn);
  for (const auto& put : batch.keys) {
    const std::string fpr = fingerprint_bytes(put.key.info.fingerprint);
    if (fpr.empty()) continue;
    MDB_val k = val(fpr), old;
    std::set<std::string> stale_ids;
    if (mdb_get(txn, keys_dbi_, &k, &old) == MDB_SUCCESS) {
      if (auto rec = decode_key_record(view(old))) {
        if (auto info = decode_key_info(rec->info_bytes)) {
          for (auto& id : index_keys(*info)) stale_ids.insert(std::move(id));
        }
      }
    }
    const std::string record = encode_key_record(put.key, put.fetched_at, put.upstream);
    MDB_val v = val(record);
    if (int rc = mdb_put(txn, keys_dbi_, &k, &v, 0)) return rc;
    for (const auto& id : index_keys(put.key.info)) {
      stale_ids.erase(id);
      MDB_val ik = val(id), iv = val(fpr);
      const int rc = mdb_put(txn, ids_dbi_, &ik, &iv, MDB_NODUPDATA);
      if (rc && rc != MDB_KEYEXIST) return rc;
    }
    for (const auto& id : stale_ids) {  // identifiers the new copy no longer has
      MDB_val ik = val(id), iv = val(fpr);
      const int rc = mdb_del(txn, ids_dbi_, &ik, &iv);
      if (rc && rc != MDB_NOTFOUND) return rc;
    }
  }
  for (const auto& [key, record] : batch.queries) {
    const std::string bytes = encode_query_record(record);
    MDB_val k = val(key), v = val(bytes);
    if (int rc = mdb_put(txn, queries_dbi_, &k, &v, 0)) return rc;
  }
  return MDB_SUCCESS;
}

int Store::commit_jobs(std::span<Job> jobs) {
  MDB_txn* txn = nullptr;
  int rc = mdb_txn_begin(env_, nullptr, 0, &txn);
  if (rc) return rc;
  for (auto& job : jobs) {
    rc = apply(txn, job.batch);
    if (rc) {
      mdb_txn_abort(txn);
      return rc;
    }
  }
  return mdb_txn_commit(txn);
}

void Store::writer_loop() {
  while (true) {
    std::vector<Job> jobs;
    {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping with nothing left
      jobs.assign(std::make_move_iterator(queue_.begin()), std::make_move_iterator(queue_.end()));
      queue_.clear();
    }
    // One transaction for everything that queued up; if it fails (map full, say), commit the
    // jobs one by one so one bad batch does not sink the others.
    std::vector<int> results(jobs.size(), commit_jobs(jobs));
    if (results.front() != MDB_SUCCESS && jobs.size() > 1) {
      for (std::size_t i = 0; i < jobs.size(); ++i) results[i] = commit_jobs({&jobs[i], 1});
    }
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
