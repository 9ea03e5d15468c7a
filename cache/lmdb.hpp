// Inside cache/: a thin RAII layer over LMDB's C API. A transaction aborts unless committed, a
// cursor closes with its scope, keys and values are string_views, and a failure to begin or
// open is a state the caller checks (explicit operator bool), never an unchecked handle.
// Only cache/*.cpp include this; Store's header sees none of it.
#pragma once

#include <lmdb.h>

#include <array>
#include <cstdint>
#include <optional>
#include <string_view>

namespace hkpgw::cache::lmdb {

// The tables of a cache, declared once (tables.hpp has their byte layouts). Schema 4.
enum class Table : unsigned { meta, keys, ids, queries, records, outbox };
inline constexpr std::size_t kTableCount = 6;
struct TableSpec {
  Table table;
  const char* name;
  unsigned flags;
};
inline constexpr std::array<TableSpec, kTableCount> kTables = {{
    {Table::meta, "meta", 0},           // "schema" -> version text
    {Table::keys, "keymap", 0},         // fingerprint -> slot (record number, times)
    {Table::ids, "ids", MDB_DUPSORT},   // identifier -> fingerprints
    {Table::queries, "queries", 0},     // query_key -> query record
    {Table::records, "records", 0},     // record number (big-endian) -> fingerprint | key record
    {Table::outbox, "outbox", 0},       // upstream \0 fingerprint -> next attempt (schema 3)
}};
using Handles = std::array<MDB_dbi, kTableCount>;

inline MDB_val val(std::string_view s) { return MDB_val{s.size(), const_cast<char*>(s.data())}; }
inline std::string_view view(const MDB_val& v) {
  return {static_cast<const char*>(v.mv_data), v.mv_size};
}

class Txn {
 public:
  enum class Mode { read, write };
  Txn(MDB_env* env, const Handles& tables, Mode mode) : tables_(tables) {
    rc_ = mdb_txn_begin(env, nullptr, mode == Mode::read ? MDB_RDONLY : 0, &txn_);
    if (rc_ != MDB_SUCCESS) txn_ = nullptr;
  }
  ~Txn() {
    if (txn_) mdb_txn_abort(txn_);
  }
  Txn(const Txn&) = delete;
  Txn& operator=(const Txn&) = delete;

  explicit operator bool() const { return txn_ != nullptr; }
  int error() const { return rc_; }  // why it did not begin
  int commit() {
    const int rc = mdb_txn_commit(txn_);
    txn_ = nullptr;
    return rc;
  }
  MDB_txn* raw() const { return txn_; }
  MDB_dbi handle(Table t) const { return tables_[static_cast<unsigned>(t)]; }

  // nullopt when absent (or unreadable: readers treat both as "not there").
  std::optional<std::string_view> get(Table t, std::string_view key) const {
    MDB_val k = val(key), v;
    if (mdb_get(txn_, handle(t), &k, &v) != MDB_SUCCESS) return std::nullopt;
    return view(v);
  }
  int put(Table t, std::string_view key, std::string_view value, unsigned flags = 0) {
    MDB_val k = val(key), v = val(value);
    const int rc = mdb_put(txn_, handle(t), &k, &v, flags);
    return rc == MDB_KEYEXIST && (flags & MDB_NODUPDATA) ? MDB_SUCCESS : rc;
  }
  // Deleting what is not there is not an error.
  int del(Table t, std::string_view key) {
    MDB_val k = val(key);
    const int rc = mdb_del(txn_, handle(t), &k, nullptr);
    return rc == MDB_NOTFOUND ? MDB_SUCCESS : rc;
  }
  int del(Table t, std::string_view key, std::string_view dup) {  // one value of a DUPSORT key
    MDB_val k = val(key), v = val(dup);
    const int rc = mdb_del(txn_, handle(t), &k, &v);
    return rc == MDB_NOTFOUND ? MDB_SUCCESS : rc;
  }
  std::optional<MDB_stat> stat(Table t) const {
    MDB_stat st;
    if (mdb_stat(txn_, handle(t), &st) != MDB_SUCCESS) return std::nullopt;
    return st;
  }
  std::uint64_t entries(Table t) const {
    const auto st = stat(t);
    return st ? st->ms_entries : 0;
  }

 private:
  MDB_txn* txn_ = nullptr;
  const Handles& tables_;
  int rc_ = MDB_SUCCESS;
};

class Cursor {
 public:
  Cursor(const Txn& txn, Table t) {
    if (!txn || mdb_cursor_open(txn.raw(), txn.handle(t), &cur_) != MDB_SUCCESS) cur_ = nullptr;
  }
  ~Cursor() {
    if (cur_) mdb_cursor_close(cur_);
  }
  Cursor(const Cursor&) = delete;
  Cursor& operator=(const Cursor&) = delete;

  explicit operator bool() const { return cur_ != nullptr; }
  // Positioning: false at the end, on error, or when the cursor did not open.
  bool first() { return go(MDB_FIRST); }
  bool last() { return go(MDB_LAST); }
  bool next() { return go(MDB_NEXT); }
  bool next_dup() { return go(MDB_NEXT_DUP); }
  bool at(std::string_view key) { return go(MDB_SET_KEY, key); }             // exactly key
  bool at_or_after(std::string_view key) { return go(MDB_SET_RANGE, key); }  // first >= key
  bool at(std::string_view key, std::string_view dup) { return go(MDB_GET_BOTH, key, dup); }
  std::string_view key() const { return view(k_); }
  std::string_view value() const { return view(v_); }
  int del() { return cur_ ? mdb_cursor_del(cur_, 0) : EINVAL; }

 private:
  bool go(MDB_cursor_op op, std::string_view key = {}, std::string_view value = {}) {
    if (!cur_) return false;
    if (op == MDB_SET_KEY || op == MDB_SET_RANGE || op == MDB_GET_BOTH) k_ = val(key);
    if (op == MDB_GET_BOTH) v_ = val(value);
    return mdb_cursor_get(cur_, &k_, &v_, op) == MDB_SUCCESS;
  }
  MDB_cursor* cur_ = nullptr;
  MDB_val k_{}, v_{};
};

}  // namespace hkpgw::cache::lmdb
