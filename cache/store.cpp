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

namespace hkpgw::cache {
namespace {

constexpr std::string_view kSchemaKey = "schema";
constexpr std::size_t kMaxEmailIndexBytes = 400;  // LMDB keys are at most 511 bytes
constexpr std::size_t kMaxPendingAccesses = 1 << 16;
constexpr auto kAccessFoldInterval = std::chrono::seconds(1);
constexpr double kEvictAbove = 0.90, kEvictDownTo = 0.80;
constexpr std::size_t kEvictChunk = 512;  // keys deleted per eviction transaction

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

// Stamp (stamps table, key = fingerprint): i64 fetched_at | i64 accessed_at, little-endian.
struct Stamp {
  std::int64_t fetched_at = 0;
  std::int64_t accessed_at = 0;
};
std::string encode_stamp(const Stamp& s) {
  std::string out(16, '\0');
  for (int i = 0; i < 8; ++i) {
    out[i] = static_cast<char>((static_cast<std::uint64_t>(s.fetched_at) >> (8 * i)) & 0xFF);
    out[8 + i] = static_cast<char>((static_cast<std::uint64_t>(s.accessed_at) >> (8 * i)) & 0xFF);
  }
  return out;
}
std::optional<Stamp> decode_stamp(std::string_view b) {
  if (b.size() != 16) return std::nullopt;
  std::uint64_t f = 0, a = 0;
  for (int i = 0; i < 8; ++i) {
    f |= static_cast<std::uint64_t>(static_cast<unsigned char>(b[i])) << (8 * i);
    a |= static_cast<std::uint64_t>(static_cast<unsigned char>(b[8 + i])) << (8 * i);
  }
  return Stamp{static_cast<std::int64_t>(f), static_cast<std::int64_t>(a)};
}
// LRU table key: big-endian accessed_at (so LMDB's order is time order) | fingerprint.
std::string lru_key(std::int64_t accessed_at, std::string_view fpr) {
  std::string k(8, '\0');
  const auto t = static_cast<std::uint64_t>(std::max<std::int64_t>(accessed_at, 0));
  for (int i = 0; i < 8; ++i) k[i] = static_cast<char>((t >> (8 * (7 - i))) & 0xFF);
  k += fpr;
  return k;
}

// Outbox (key = upstream '\0' fingerprint): i64 next_attempt | u32 attempts | error (rest).
std::string outbox_key(std::string_view upstream, std::string_view fpr) {
  std::string k(upstream);
  k.push_back('\0');
  k += fpr;
  return k;
}
std::string encode_outbox(const OutboxEntry& e) {
  std::string out(12, '\0');
  for (int i = 0; i < 8; ++i) {
    out[i] = static_cast<char>((static_cast<std::uint64_t>(e.next_attempt) >> (8 * i)) & 0xFF);
  }
  for (int i = 0; i < 4; ++i) out[8 + i] = static_cast<char>((e.attempts >> (8 * i)) & 0xFF);
  out += e.last_error.substr(0, 300);
  return out;
}
std::optional<OutboxEntry> decode_outbox(std::string_view k, std::string_view v) {
  const auto zero = k.find('\0');
  if (zero == std::string_view::npos || k.size() - zero - 1 != 20 || v.size() < 12) return std::nullopt;
  OutboxEntry e;
  e.upstream = std::string(k.substr(0, zero));
  e.fingerprint = std::string(k.substr(zero + 1));
  std::uint64_t t = 0;
  for (int i = 0; i < 8; ++i) t |= static_cast<std::uint64_t>(static_cast<unsigned char>(v[i])) << (8 * i);
  e.next_attempt = static_cast<std::int64_t>(t);
  for (int i = 0; i < 4; ++i) e.attempts |= static_cast<std::uint32_t>(static_cast<unsigned char>(v[8 + i])) << (8 * i);
  e.last_error = std::string(v.substr(12));
  return e;
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

void Store::flush() {
  if (options_.read_only) return;
  std::unique_lock lock(mutex_);
  const std::uint64_t target = queued_;
  flushed_.wait(lock, [&] { return committed_ >= target; });
}

namespace {

// Moves `fpr`'s stamp to `s`, keeping the LRU table in step.
int put_stamp(MDB_txn* txn, unsigned stamps_dbi, unsigned lru_dbi, std::string_view fpr,
              const std::optional<Stamp>& old, const Stamp& s) {
  if (old && old->accessed_at != s.accessed_at) {
    const std::string ok = lru_key(old->accessed_at, fpr);
    MDB_val okv = val(ok);
    const int rc = mdb_del(txn, lru_dbi, &okv, nullptr);
    if (rc && rc != MDB_NOTFOUND) return rc;
  }
  const std::string bytes = encode_stamp(s);
  MDB_val k = val(fpr), v = val(bytes);
  if (int rc = mdb_put(txn, stamps_dbi, &k, &v, 0)) return rc;
  if (!old || old->accessed_at != s.accessed_at) {
    const std::string nk = lru_key(s.accessed_at, fpr);
    MDB_val nkv = val(nk), empty{0, nullptr};
    if (int rc = mdb_put(txn, lru_dbi, &nkv, &empty, 0)) return rc;
  }
  return MDB_SUCCESS;
}

std::optional<Stamp> get_stamp(MDB_txn* txn, unsigned stamps_dbi, std::string_view fpr) {
  MDB_val k = val(fpr), v;
  if (mdb_get(txn, stamps_dbi, &k, &v) != MDB_SUCCESS) return std::nullopt;
  return decode_stamp(view(v));
}

// Removes a key with its identifiers, stamp and LRU entry.
int remove_key(MDB_txn* txn, unsigned keys_dbi, unsigned ids_dbi, unsigned stamps_dbi,
               unsigned lru_dbi, std::string_view fpr) {
  MDB_val k = val(fpr), rec;
  int rc = mdb_get(txn, keys_dbi, &k, &rec);
  if (rc == MDB_NOTFOUND) return MDB_SUCCESS;
  if (rc) return rc;
  std::vector<std::string> ids;
  if (auto r = decode_key_record(view(rec))) {
    if (auto info = decode_key_info(r->info_bytes)) ids = index_keys(*info);
  }
  for (const auto& id : ids) {
    MDB_val ik = val(id), iv = val(fpr);
    rc = mdb_del(txn, ids_dbi, &ik, &iv);
    if (rc && rc != MDB_NOTFOUND) return rc;
  }
  if (auto s = get_stamp(txn, stamps_dbi, fpr)) {
    const std::string lk = lru_key(s->accessed_at, fpr);
    MDB_val lkv = val(lk);
    rc = mdb_del(txn, lru_dbi, &lkv, nullptr);
    if (rc && rc != MDB_NOTFOUND) return rc;
  }
  MDB_val sk = val(fpr);
  rc = mdb_del(txn, stamps_dbi, &sk, nullptr);
  if (rc && rc != MDB_NOTFOUND) return rc;
  rc = mdb_del(txn, keys_dbi, &k, nullptr);
  return rc == MDB_NOTFOUND ? MDB_SUCCESS : rc;
}

}  // namespace

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
    const auto was = get_stamp(txn, stamps_dbi_, fpr);
    const Stamp s{put.fetched_at, std::max(was ? was->accessed_at : 0, put.fetched_at)};
    if (int rc = put_stamp(txn, stamps_dbi_, lru_dbi_, fpr, was, s)) return rc;
  }
  for (const auto& [fpr, fetched_at] : batch.confirmed) {
    const auto was = get_stamp(txn, stamps_dbi_, fpr);
    if (!was) continue;  // evicted meanwhile
    if (int rc = put_stamp(txn, stamps_dbi_, lru_dbi_, fpr, was, Stamp{fetched_at, was->accessed_at})) {
      return rc;
    }
  }
  for (const auto& [key, record] : batch.queries) {
    const std::string bytes = encode_query_record(record);
    MDB_val k = val(key), v = val(bytes);
    if (int rc = mdb_put(txn, queries_dbi_, &k, &v, 0)) return rc;
  }
  for (const auto& fpr : batch.purge) {
    if (int rc = remove_key(txn, keys_dbi_, ids_dbi_, stamps_dbi_, lru_dbi_, fpr)) return rc;
  }
  for (const auto& e : batch.outbox_put) {
    const std::string k = outbox_key(e.upstream, e.fingerprint), v = encode_outbox(e);
    MDB_val kv = val(k), vv = val(v);
    if (int rc = mdb_put(txn, outbox_dbi_, &kv, &vv, 0)) return rc;
  }
  for (const auto& [upstream, fpr] : batch.outbox_done) {
    const std::string k = outbox_key(upstream, fpr);
    MDB_val kv = val(k);
    const int rc = mdb_del(txn, outbox_dbi_, &kv, nullptr);
    if (rc && rc != MDB_NOTFOUND) return rc;
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

int Store::fold_accesses() {
  std::vector<std::array<char, 20>> pending;
  {
    std::lock_guard lock(access_mutex_);
    pending.swap(accesses_);
  }
  if (pending.empty()) return MDB_SUCCESS;
  std::sort(pending.begin(), pending.end());
  pending.erase(std::unique(pending.begin(), pending.end()), pending.end());
  const std::int64_t now = options_.now();
  MDB_txn* txn = nullptr;
  int rc = mdb_txn_begin(env_, nullptr, 0, &txn);
  if (rc) return rc;
  for (const auto& f : pending) {
    const std::string_view fpr(f.data(), f.size());
    const auto was = get_stamp(txn, stamps_dbi_, fpr);
    if (!was || was->accessed_at >= now) continue;
    rc = put_stamp(txn, stamps_dbi_, lru_dbi_, fpr, was, Stamp{was->fetched_at, now});
    if (rc) {
      mdb_txn_abort(txn);
      return rc;
    }
  }
  return mdb_txn_commit(txn);
}

int Store::evict_oldest(std::size_t n, std::int64_t& newest_evicted) {
  MDB_txn* txn = nullptr;
  if (const int rc = mdb_txn_begin(env_, nullptr, 0, &txn)) return rc;
  std::vector<std::string> oldest;  // LRU keys: accessed_at | fingerprint, oldest first
  MDB_cursor* cur = nullptr;
  if (mdb_cursor_open(txn, lru_dbi_, &cur) == MDB_SUCCESS) {
    MDB_val lk, lv;
    for (int rc = mdb_cursor_get(cur, &lk, &lv, MDB_FIRST);
         rc == MDB_SUCCESS && oldest.size() < n; rc = mdb_cursor_get(cur, &lk, &lv, MDB_NEXT)) {
      oldest.emplace_back(view(lk));
    }
    mdb_cursor_close(cur);
  }
  std::int64_t newest = newest_evicted;
  for (const auto& k : oldest) {
    std::int64_t t = 0;
    for (int i = 0; i < 8; ++i) t = (t << 8) | static_cast<unsigned char>(k[i]);
    newest = std::max(newest, t);
    if (const int rc =
            remove_key(txn, keys_dbi_, ids_dbi_, stamps_dbi_, lru_dbi_, std::string_view(k).substr(8))) {
      mdb_txn_abort(txn);
      return rc;
    }
  }
  if (const int rc = mdb_txn_commit(txn)) return rc;
  newest_evicted = newest;
  return MDB_SUCCESS;
}

bool Store::evict(std::uint64_t above, std::uint64_t down_to) {
  std::uint64_t used = 0;
  std::size_t to_evict = 0;
  {  // The common case after a commit: under the mark, and a read transaction is enough to see it.
    ReadTxn r(env_);
    if (!r.txn) return false;
    used = used_bytes(r.txn);
    MDB_stat st;
    if (used <= above || mdb_stat(r.txn, keys_dbi_, &st) != MDB_SUCCESS || st.ms_entries == 0) {
      return false;
    }
    // Page counts hardly fall inside the transactions that delete (LMDB frees a page only when
    // it empties or merges), so the number of keys to evict is worked out up front from the
    // average cost of a key; the next round corrects any shortfall.
    const std::uint64_t per_key = std::max<std::uint64_t>(1, used / st.ms_entries);
    const std::uint64_t excess = used > down_to ? used - down_to : used / 10;
    to_evict = static_cast<std::size_t>(
        std::min<std::uint64_t>(st.ms_entries, (excess + per_key - 1) / per_key));
  }
  // Small transactions: on a full map even a deletion needs free pages for its copy-on-write
  // path, and one transaction deleting thousands of keys needs many. A chunk that still finds
  // the map full is retried smaller, down to one key.
  std::size_t done = 0, chunk = kEvictChunk;
  std::int64_t newest_evicted = 0;
  while (done < to_evict) {
    const std::size_t n = std::min(chunk, to_evict - done);
    const int rc = evict_oldest(n, newest_evicted);
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
  MDB_txn* txn = nullptr;
  if (mdb_txn_begin(env_, nullptr, 0, &txn) == MDB_SUCCESS) {
    MDB_cursor* cur = nullptr;
    if (mdb_cursor_open(txn, queries_dbi_, &cur) == MDB_SUCCESS) {
      MDB_val qk, qv;
      for (int rc = mdb_cursor_get(cur, &qk, &qv, MDB_FIRST); rc == MDB_SUCCESS;
           rc = mdb_cursor_get(cur, &qk, &qv, MDB_NEXT)) {
        auto q = decode_query_record(view(qv));
        if (!q || q->fetched_at <= newest_evicted) mdb_cursor_del(cur, 0);
      }
      mdb_cursor_close(cur);
    }
    if (mdb_txn_commit(txn) != MDB_SUCCESS) {
      // Stale query records only cost space; the next round takes them.
    }
  }
  evicted_ += done;
  if (options_.on_evict) options_.on_evict(done, used);
  return true;
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
