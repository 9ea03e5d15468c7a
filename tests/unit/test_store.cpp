// The LMDB store with real files in a fresh temp dir and real keys made by gpg.
#include <catch2/catch.hpp>

#include <filesystem>
#include <future>
#include <mutex>
#include <thread>
#include <utility>
#include <numeric>
#include <random>
#include <set>

#include <fcntl.h>
#include <lmdb.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cache/codec.hpp"
#include "cache/store.hpp"
#include "cache/tables.hpp"
#include "hkp/keyring.hpp"
#include "support/harness.hpp"

using namespace hkpgw;
using namespace hkpgw::cache;
using hkp::SearchKind;
using hkpgw::test::data_dir;
using hkpgw::test::fixture;
using hkpgw::test::read_file;
using hkpgw::test::TempDir;

namespace {

std::vector<hkp::ParsedKey> keys_of(const std::string& file) {
  return hkp::parse_keys(read_file(data_dir() + "/" + file), {}).keys;
}

Fingerprint fpr_of(const std::string& hex) {
  const auto f = Fingerprint::from_hex(hex);
  REQUIRE(f);
  return *f;
}

std::error_code write_sync(Store& store, WriteBatch batch) {
  std::promise<std::error_code> done;
  store.write(std::move(batch), [&](std::error_code ec) { done.set_value(ec); });
  return done.get_future().get();
}

std::string address_key(const std::string& email) {
  return query_key(hkp::Op::get, hkp::Search{SearchKind::email, email});
}

std::vector<std::string> found(const Store& store, SearchKind kind, const std::string& value) {
  std::vector<std::string> fprs;
  store.visit({kind, value}, [&](const KeyRecordView& v) {
    auto info = decode_key_info(v.info_bytes);
    REQUIRE(info);
    fprs.push_back(info->fingerprint);
  });
  std::sort(fprs.begin(), fprs.end());
  return fprs;
}

// What a store reports to on_commit, collected across the writer thread.
struct CommitLog {
  std::mutex mutex;
  std::vector<Committed> seen;
  void attach(StoreOptions& o) {
    o.on_commit = [this](const Committed& c) {
      std::lock_guard lock(mutex);
      seen.push_back(c);
    };
  }
  std::vector<Committed> take() {
    std::lock_guard lock(mutex);
    return std::exchange(seen, {});
  }
};

}  // namespace

TEST_CASE("a stored key is found by every identifier", "[cache][unit]") {
  TempDir dir;
  Store store({dir / "cache", 64 << 20});
  WriteBatch b;
  for (auto& k : keys_of("alice.asc")) b.keys.push_back({k, 1000, "ubuntu"});
  REQUIRE_FALSE(write_sync(store, std::move(b)));

  const std::string fpr = fixture("ALICE_FPR"), sub = fixture("ALICE_SUB_FPR");
  const std::vector<std::string> alice{fpr};
  CHECK(found(store, SearchKind::fingerprint, fpr) == alice);
  CHECK(found(store, SearchKind::long_keyid, fpr.substr(24)) == alice);
  CHECK(found(store, SearchKind::short_keyid, fpr.substr(32)) == alice);
  CHECK(found(store, SearchKind::fingerprint, sub) == alice);
  CHECK(found(store, SearchKind::long_keyid, sub.substr(24)) == alice);
  CHECK(found(store, SearchKind::email, "alice@example.org") == alice);
  CHECK(found(store, SearchKind::email, "alice@work.example") == alice);
  CHECK(found(store, SearchKind::email, "bob+keys@example.org").empty());
  CHECK(found(store, SearchKind::text, "Alice").empty());  // text goes through query records

  std::string upstream;
  std::int64_t fetched = 0;
  store.visit({SearchKind::fingerprint, fpr}, [&](const KeyRecordView& v) {
    upstream = std::string(v.upstream);
    fetched = v.fetched_at;
    CHECK(hkp::parse_keys(v.packets, {}).keys.size() == 1);
  });
  CHECK(upstream == "ubuntu");
  CHECK(fetched == 1000);
  const auto s = store.stats();
  CHECK(s.keys == 1);
  CHECK(s.identifiers >= 8);
}

TEST_CASE("an address shared by two keys finds both", "[cache][unit]") {
  TempDir dir;
  Store store({dir / "cache", 64 << 20});
  WriteBatch b;
  for (auto& k : keys_of("team.asc")) b.keys.push_back({k, 1, "x"});
  REQUIRE(b.keys.size() == 2);
  REQUIRE_FALSE(write_sync(store, std::move(b)));
  std::vector<std::string> both{fixture("TEAM1_FPR"), fixture("TEAM2_FPR")};
  std::sort(both.begin(), both.end());
  CHECK(found(store, SearchKind::email, "team@example.org") == both);
}

TEST_CASE("replacing a key replaces its index entries", "[cache][unit]") {
  TempDir dir;
  Store store({dir / "cache", 64 << 20});
  auto alice = keys_of("alice.asc").at(0);
  WriteBatch first;
  first.keys.push_back({alice, 1, "a"});
  REQUIRE_FALSE(write_sync(store, std::move(first)));
  // A copy without the work address and the subkey: those identifiers must stop matching.
  auto smaller = alice;
  std::erase_if(smaller.info.uids,
                [](const hkp::UserId& u) { return u.email == "alice@work.example"; });
  smaller.info.subkeys.clear();
  WriteBatch second;
  second.keys.push_back({smaller, 2, "b"});
  REQUIRE_FALSE(write_sync(store, std::move(second)));
  CHECK(found(store, SearchKind::email, "alice@work.example").empty());
  CHECK(found(store, SearchKind::fingerprint, fixture("ALICE_SUB_FPR")).empty());
  CHECK(found(store, SearchKind::email, "alice@example.org").size() == 1);
  CHECK(store.stats().keys == 1);
}

TEST_CASE("query records and persistence across reopen", "[cache][unit]") {
  TempDir dir;
  {
    Store store({dir / "cache", 64 << 20});
    WriteBatch b;
    for (auto& k : keys_of("bob.asc")) b.keys.push_back({k, 5, "x"});
    b.queries.emplace_back("get:email:nobody@example.org", QueryRecord{7, "", QueryKind::not_found, {}, {}});
    store.write(std::move(b), nullptr);
    // Destruction commits what is queued.
  }
  Store store({dir / "cache", 64 << 20});
  CHECK(found(store, SearchKind::fingerprint, fixture("BOB_FPR")).size() == 1);
  auto q = store.get_query("get:email:nobody@example.org");
  REQUIRE(q);
  CHECK(q->kind == QueryKind::not_found);
  CHECK(q->fetched_at == 7);
  CHECK_FALSE(store.get_query("get:email:other@example.org"));
}

TEST_CASE("flush waits for queued writes", "[cache][unit]") {
  TempDir dir;
  Store store({dir / "cache", 64 << 20});
  for (auto& k : keys_of("upstream-keys.asc")) {
    WriteBatch b;
    b.keys.push_back({k, 1, "x"});
    store.write(std::move(b), nullptr);
  }
  store.flush();
  CHECK(store.stats().keys == 7);
}

TEST_CASE("key_times walks every key's times in fingerprint order, a slice at a time",
          "[cache][unit]") {
  TempDir dir;
  Store store({dir / "cache", 64 << 20});
  WriteBatch b;
  std::int64_t when = 100;
  for (auto& k : keys_of("upstream-keys.asc")) b.keys.push_back({k, when++, "x"});
  REQUIRE_FALSE(store.write_and_wait(std::move(b)));
  const auto confirmed = Fingerprint::from_hex(fixture("BOB_FPR"));
  REQUIRE(confirmed);
  WriteBatch c;
  c.confirmed.emplace_back(*confirmed, 5000);
  REQUIRE_FALSE(store.write_and_wait(std::move(c)));

  std::vector<Store::KeyTimes> all;
  std::optional<Fingerprint> after;
  for (int slices = 0; slices < 10; ++slices) {
    const auto slice = store.key_times(after, 3);
    CHECK(slice.size() <= 3);
    if (slice.empty()) break;
    all.insert(all.end(), slice.begin(), slice.end());
    after = slice.back().fingerprint;
  }
  REQUIRE(all.size() == 7);
  // LMDB's order: the bytes as unsigned, as memcmp compares them.
  for (std::size_t i = 1; i < all.size(); ++i) {
    CHECK(all[i - 1].fingerprint.bytes() < all[i].fingerprint.bytes());
  }
  for (const auto& k : all) {
    if (k.fingerprint == *confirmed) {
      CHECK(k.fetched_at == 5000);  // a confirmation moves the time the refresher reads
    } else {
      CHECK(k.fetched_at >= 100);
      CHECK(k.fetched_at < 107);
    }
  }
  CHECK(store.key_times(all.back().fingerprint, 3).empty());
}

TEST_CASE("lazy writes wait for company and share one transaction, and an eager one goes at once",
          "[cache][unit]") {
  TempDir dir;
  CommitLog log;
  StoreOptions o(dir / "cache", 64 << 20);
  log.attach(o);
  Store store(o);
  auto lazy_not_found = [](const std::string& key) {
    WriteBatch b;
    b.queries.emplace_back(key, not_found_record(1000));
    b.lazy = true;
    return b;
  };
  store.write(lazy_not_found("get:f:A"), nullptr);
  // Well inside kLazyWriteWindow: an eager writer would have committed the first one by now.
  std::this_thread::sleep_for(std::chrono::milliseconds(10));
  store.write(lazy_not_found("get:f:B"), nullptr);
  store.flush();
  auto seen = log.take();
  REQUIRE(seen.size() == 1);
  CHECK(seen[0].queries == std::vector<std::string>{"get:f:A", "get:f:B"});
  CHECK(store.get_query("get:f:B"));

  // A write someone waits for takes the lazy ones queued before it along, without waiting.
  store.write(lazy_not_found("get:f:C"), nullptr);
  WriteBatch eager;
  eager.queries.emplace_back("get:f:D", not_found_record(1000));
  REQUIRE_FALSE(store.write_and_wait(std::move(eager)));
  seen = log.take();
  REQUIRE(seen.size() == 1);
  CHECK(seen[0].queries == std::vector<std::string>{"get:f:C", "get:f:D"});
}

TEST_CASE("a foreign file at cache.path is a clear error", "[cache][unit]") {
  TempDir dir;
  SECTION("a file where the directory should be") {
    test::write_file(dir / "notadir", "x");
    CHECK_THROWS_WITH(Store({dir / "notadir", 64 << 20}),
                      Catch::Matchers::Contains("is not a directory"));
  }
  SECTION("garbage in data.mdb") {
    std::filesystem::create_directories(dir / "cache");
    test::write_file(dir / "cache/data.mdb", std::string(8192, 'x'));
    CHECK_THROWS_WITH(Store({dir / "cache", 64 << 20}),
                      Catch::Matchers::Contains("not an LMDB cache"));
  }
}

namespace {

// The cache's LMDB files opened directly, as another program (or an older build) would.
struct RawCache {
  MDB_env* env = nullptr;
  MDB_txn* txn = nullptr;
  RawCache(const std::string& path, bool read_only) {
    std::filesystem::create_directories(path);
    REQUIRE(mdb_env_create(&env) == 0);
    mdb_env_set_maxdbs(env, 12);
    REQUIRE(mdb_env_open(env, path.c_str(), read_only ? MDB_RDONLY : 0, 0640) == 0);
    REQUIRE(mdb_txn_begin(env, nullptr, read_only ? MDB_RDONLY : 0, &txn) == 0);
  }
  ~RawCache() {
    if (txn) mdb_txn_abort(txn);
    mdb_env_close(env);
  }
  MDB_dbi table(const char* name, unsigned flags = 0) {  // MDB_CREATE to make it
    MDB_dbi dbi;
    REQUIRE(mdb_dbi_open(txn, name, flags, &dbi) == 0);
    return dbi;
  }
  std::optional<std::string_view> get(MDB_dbi dbi, std::string_view k) {
    MDB_val kv{k.size(), const_cast<char*>(k.data())}, vv;
    if (mdb_get(txn, dbi, &kv, &vv) != 0) return std::nullopt;
    return std::string_view(static_cast<const char*>(vv.mv_data), vv.mv_size);
  }
  void put(MDB_dbi dbi, std::string_view k, std::string_view v) {
    MDB_val kv{k.size(), const_cast<char*>(k.data())}, vv{v.size(), const_cast<char*>(v.data())};
    REQUIRE(mdb_put(txn, dbi, &kv, &vv, 0) == 0);
  }
  void commit() {
    REQUIRE(mdb_txn_commit(txn) == 0);
    txn = nullptr;
  }
};

// Keys made by the keygen tool (RNP), parsed once per test binary run.
const std::vector<hkp::ParsedKey>& bulk_keys() {
  static const std::vector<hkp::ParsedKey> keys = [] {
    TempDir dir;
    const auto r = hkpgw::test::run({HKPGW_KEYGEN, "600", dir / "bulk.asc"});
    REQUIRE(r.exit_code == 0);
    return hkp::parse_keys(read_file(dir / "bulk.asc"), {}).keys;
  }();
  return keys;
}

}  // namespace

TEST_CASE("a confirmed key moves its freshness without rewriting its record", "[cache][unit]") {
  TempDir dir;
  {
    Store store({dir / "cache", 64 << 20});
    WriteBatch b;
    for (auto& k : keys_of("alice.asc")) b.keys.push_back({k, 1000, "ubuntu"});
    REQUIRE_FALSE(write_sync(store, std::move(b)));
    WriteBatch c;
    c.confirmed.emplace_back(fpr_of(fixture("ALICE_FPR")), 2000);
    REQUIRE_FALSE(write_sync(store, std::move(c)));
    std::int64_t seen = 0;
    store.visit({SearchKind::fingerprint, fixture("ALICE_FPR")},
                [&](const KeyRecordView& v) { seen = v.fetched_at; });
    CHECK(seen == 2000);
  }
  // The record itself still says 1000: it was not written again (only the key's slot was).
  RawCache raw(dir / "cache", true);
  const Fingerprint alice = fpr_of(fixture("ALICE_FPR"));
  const auto slot = raw.get(raw.table("keymap"), alice.bytes());
  REQUIRE(slot);
  const auto record = raw.get(raw.table("records"), detail::record_key(detail::decode_slot(*slot)->record));
  REQUIRE(record);
  REQUIRE(record->starts_with(alice.bytes()));
  auto rec = decode_key_record(record->substr(alice.bytes().size()));
  REQUIRE(rec);
  CHECK(rec->fetched_at == 1000);
}

TEST_CASE("the text fallback's scan of the address index is bounded", "[cache][unit]") {
  TempDir dir;
  Store store({dir / "cache", 64 << 20});
  WriteBatch b;
  for (const char* f : {"alice.asc", "bob.asc", "carol.asc", "dave.asc"}) {
    for (auto& k : keys_of(f)) b.keys.push_back({k, 1000, "ubuntu"});
  }
  REQUIRE_FALSE(write_sync(store, std::move(b)));
  std::size_t seen = 0;
  const auto count = [&](const KeyRecordView&) { ++seen; };
  CHECK(store.visit_text("example.org", 100, count) >= 3);  // every address is @example.org
  const std::size_t all = seen;
  seen = 0;
  CHECK(store.visit_text("example.org", 100, count, 1) == 1);  // one entry looked at
  CHECK(seen == 1);
  CHECK(all > seen);
}

TEST_CASE("reads within access_granularity of the stored access time write nothing",
          "[cache][unit]") {
  TempDir dir;
  std::atomic<std::int64_t> clock{1000};
  StoreOptions o(dir / "cache", 64 << 20);
  o.now = [&] { return clock.load(); };
  o.access_granularity = 600;
  Store store(o);
  WriteBatch b;
  for (auto& k : keys_of("alice.asc")) b.keys.push_back({k, 1000, "ubuntu"});
  REQUIRE_FALSE(write_sync(store, std::move(b)));
  const Fingerprint alice = fpr_of(fixture("ALICE_FPR"));
  auto accessed = [&] {
    std::int64_t at = -1;
    store.visit({SearchKind::fingerprint, fixture("ALICE_FPR")},
                [&](const KeyRecordView& v) { at = v.accessed_at; });
    return at;
  };
  const std::int64_t stored = accessed();
  REQUIRE(stored == 1000);
  const auto before = store.stats();
  clock = 1000 + 599;  // served again and again within the granularity: no note, no fold
  for (int i = 0; i < 100; ++i) store.note_access(alice, accessed());
  REQUIRE_FALSE(write_sync(store, {}));
  CHECK(accessed() == 1000);
  clock = 1000 + 600;  // now it is stale: one note, folded into the stamp
  store.note_access(alice, accessed());
  REQUIRE_FALSE(write_sync(store, {}));
  CHECK(accessed() == 1600);
  store.note_access(alice, accessed());  // recorded: nothing to do again
  REQUIRE_FALSE(write_sync(store, {}));
  CHECK(accessed() == 1600);
  CHECK(store.stats().keys == before.keys);
}

TEST_CASE("at max_size the least recently used keys are evicted", "[cache][unit]") {
  TempDir dir;
  std::atomic<std::int64_t> clock{1000};
  StoreOptions o(dir / "cache", 256 << 10);
  o.now = [&] { return clock.load(); };
  o.access_granularity = 1;  // this test's clock moves a second per batch
  Store store(o);
  const auto& keys = bulk_keys();
  REQUIRE(keys.size() == 600);
  std::vector<Fingerprint> hot;
  for (int i = 0; i < 5; ++i) hot.push_back(fpr_of(keys[i].info.fingerprint));
  for (std::size_t at = 0; at < keys.size(); at += 50) {
    WriteBatch b;
    for (std::size_t i = at; i < at + 50; ++i) b.keys.push_back({keys[i], clock.load(), "bulk"});
    REQUIRE_FALSE(write_sync(store, std::move(b)));
    ++clock;
    for (const auto& h : hot) store.note_access(h);  // clients keep asking for these
    REQUIRE_FALSE(write_sync(store, {}));            // folded now, a second before the next batch
    ++clock;
  }
  store.flush();
  // The writer also folds access notes on its own once a second (a slow run sees that happen
  // after flush), and that fold can take a page past max_size until the eviction right after
  // it: the store settles under max_size.
  // A round goes on to 80% in several transactions, each counted as it commits: the counts
  // agree once it is over.
  CHECK(hkpgw::test::eventually(
      [&] {
        const auto s = store.stats();
        return s.used_bytes <= s.max_bytes && s.keys + s.evicted == 600;
      },
      std::chrono::seconds(5)));
  const auto s = store.stats();
  INFO("keys " << s.keys << " evicted " << s.evicted << " used " << s.used_bytes);
  CHECK(s.evicted > 0);
  CHECK(s.keys + s.evicted == 600);
  for (int i = 0; i < 5; ++i) {
    CHECK(found(store, SearchKind::fingerprint, keys[i].info.fingerprint).size() == 1);
  }
  CHECK(found(store, SearchKind::fingerprint, keys[10].info.fingerprint).empty());  // old, cold
  CHECK(found(store, SearchKind::fingerprint, keys[599].info.fingerprint).size() == 1);  // new
  CHECK(store.verify().empty());
}

TEST_CASE("one eviction round frees the space it aims for, whatever the access order",
          "[cache][unit]") {
  // Clients read keys in an order that has nothing to do with their fingerprints. Deleting in
  // that order from a table sorted by fingerprint leaves every page partly full and frees next to
  // nothing (at a million keys: 12.7% of the keys evicted for 1.5% of the space).
  TempDir dir;
  std::atomic<std::int64_t> clock{1000};
  const auto& keys = bulk_keys();
  std::vector<std::size_t> read_order(keys.size());
  std::iota(read_order.begin(), read_order.end(), 0);
  std::shuffle(read_order.begin(), read_order.end(), std::mt19937(7));
  read_order.resize(keys.size() / 2);  // a random half of the keys is read again later
  std::uint64_t used = 0;
  {
    StoreOptions o(dir / "cache", 64 << 20);
    o.now = [&] { return clock.load(); };
    o.access_granularity = 1;
    Store store(o);
    for (std::size_t at = 0; at < keys.size(); at += 100) {
      WriteBatch b;
      for (std::size_t i = at; i < at + 100; ++i) {
        b.keys.push_back({keys[i], clock.load(), "bulk"});
        for (const auto& u : keys[i].info.uids) {  // as `cache import` and upstream answers do
          b.queries.emplace_back(address_key(u.email),
                                 QueryRecord{clock.load(), "bulk", QueryKind::fingerprints,
                                             {keys[i].info.fingerprint}, {}});
        }
      }
      REQUIRE_FALSE(write_sync(store, std::move(b)));
    }
    for (const auto i : read_order) {
      clock += 2;
      store.note_access(fpr_of(keys[i].info.fingerprint));
      REQUIRE_FALSE(write_sync(store, {}));  // folded one by one: a distinct time each
    }
    used = store.stats().used_bytes;
  }
  // Reopened with max_size at the data's size: over the 90% mark, so one round aims for 80%.
  StoreOptions o(dir / "cache", used);
  o.now = [&] { return clock.load(); };
  std::mutex mutex;
  std::vector<std::pair<std::size_t, std::uint64_t>> rounds;  // (evicted, used before)
  o.on_evict = [&](const StoreOptions::Evicted& e) {
    std::lock_guard lock(mutex);
    rounds.emplace_back(e.keys, e.used_before);
  };
  Store store(o);
  REQUIRE(hkpgw::test::eventually([&] {
    std::lock_guard lock(mutex);
    return !rounds.empty();
  }));
  const auto after = store.stats();
  {
    std::lock_guard lock(mutex);
    INFO("used " << used << " -> " << after.used_bytes << ", evicted " << rounds.front().first
                 << " of " << keys.size() << " in " << rounds.size() << " round(s)");
    CHECK(rounds.size() == 1);
    CHECK(after.used_bytes <= used * 81 / 100);
    // ...by evicting about a fifth of the keys, not most of them.
    CHECK(rounds.front().first < keys.size() / 2);
  }
  // The keys read again are the ones kept, and an address's query record goes with its key.
  std::set<std::size_t> read(read_order.begin(), read_order.end());
  std::size_t read_evicted = 0, records_wrong = 0;
  for (std::size_t i = 0; i < keys.size(); ++i) {
    const bool kept = !found(store, SearchKind::fingerprint, keys[i].info.fingerprint).empty();
    if (read.contains(i)) read_evicted += !kept;
    for (const auto& u : keys[i].info.uids) {
      records_wrong += store.get_query(address_key(u.email)).has_value() != kept;
    }
  }
  CHECK(read_evicted == 0);
  CHECK(records_wrong == 0);
  CHECK(store.verify().empty());
}

TEST_CASE("a write queued during an eviction round waits for one chunk, not the round",
          "[cache][unit]") {
  // At a million keys one round took 47 s; a lookup that stores what it fetched awaits its
  // commit, so a round that kept the writer would have stalled every miss that long.
  TempDir dir;
  const auto& keys = bulk_keys();
  std::uint64_t used = 0;
  {
    Store store({dir / "cache", 64 << 20});
    WriteBatch b;
    for (std::size_t i = 0; i < 500; ++i) b.keys.push_back({keys[i], 1000, "bulk"});
    REQUIRE_FALSE(write_sync(store, std::move(b)));
    used = store.stats().used_bytes;
  }
  StoreOptions o(dir / "cache", used);
  o.evict_chunk = 1;  // a round of a hundred and more transactions
  std::atomic<bool> round_over{false};
  o.on_evict = [&](const StoreOptions::Evicted&) { round_over = true; };
  Store store(o);
  // The round is under way once keys start to go.
  REQUIRE(hkpgw::test::eventually([&] { return store.stats().keys < 500 || round_over; }));
  REQUIRE_FALSE(round_over.load());
  WriteBatch b;
  b.keys.push_back({keys[599], 2000, "bulk"});
  std::atomic<bool> over_at_commit{true};
  REQUIRE_FALSE(store.write_and_wait(std::move(b)));  // returns once `done` ran
  over_at_commit = round_over.load();
  CHECK_FALSE(over_at_commit.load());  // committed in the middle of the round
  REQUIRE(hkpgw::test::eventually([&] { return round_over.load(); }));  // which then finished
  const auto s = store.stats();
  CHECK(s.used_bytes <= used * 81 / 100);
  CHECK(found(store, SearchKind::fingerprint, keys[599].info.fingerprint).size() == 1);  // newest
  CHECK(store.verify().empty());
}

namespace {

// A cache as schemas 1-3 wrote it: records in a `keys` table by fingerprint; since schema 2 a
// stamp per key (fetched_at, accessed_at) and an LRU table; since 3 an outbox.
void write_old_cache(const std::string& path, int schema,
                     const std::vector<std::pair<hkp::ParsedKey, std::int64_t>>& keys_accessed_at) {
  RawCache raw(path, false);
  const MDB_dbi meta = raw.table("meta", MDB_CREATE), keys = raw.table("keys", MDB_CREATE);
  const MDB_dbi ids = raw.table("ids", MDB_CREATE | MDB_DUPSORT);
  raw.table("queries", MDB_CREATE);
  const MDB_dbi stamps = schema >= 2 ? raw.table("stamps", MDB_CREATE) : 0;
  const MDB_dbi lru = schema >= 2 ? raw.table("lru", MDB_CREATE) : 0;
  if (schema >= 3) raw.table("outbox", MDB_CREATE);
  for (const auto& [key, accessed_at] : keys_accessed_at) {
    const std::string fpr(fpr_of(key.info.fingerprint).bytes());
    raw.put(keys, fpr, encode_key_record(key, 1234, "ubuntu"));
    for (const auto& id : detail::index_keys(key.info)) raw.put(ids, id, fpr);
    if (schema >= 2) {
      std::string stamp, order;
      codec::put_le(stamp, 5678, 8);  // a later confirmation than the record's 1234
      codec::put_le(stamp, static_cast<std::uint64_t>(accessed_at), 8);
      codec::put_be64(order, static_cast<std::uint64_t>(accessed_at));
      raw.put(stamps, fpr, stamp);
      raw.put(lru, order + fpr, "");
    }
  }
  raw.put(meta, "schema", std::to_string(schema));
  raw.commit();
}

}  // namespace

TEST_CASE("caches written by schemas 1 to 3 are migrated on open", "[cache][unit]") {
  const int schema = GENERATE(1, 2, 3);
  INFO("schema " << schema);
  TempDir dir;
  const auto& keys = bulk_keys();
  // Read least recently: keys[2], then keys[0], then keys[1].
  write_old_cache(dir / "cache", schema, {{keys[0], 2000}, {keys[1], 3000}, {keys[2], 1000}});
  StoreOptions o(dir / "cache", 64 << 20);
  o.on_evict = [](const StoreOptions::Evicted&) { FAIL("evicted"); };
  {
    Store store(o);
    CHECK(store.opened_schema() == schema);
    CHECK(store.stats().schema == 4);
    CHECK(store.verify().empty());
    std::vector<std::string> order;
    std::vector<std::int64_t> fetched, accessed;
    CHECK(store.visit_all([&](const KeyRecordView& r) {
      order.push_back(r.fingerprint.hex());
      fetched.push_back(r.fetched_at);
      accessed.push_back(r.accessed_at);
    }) == 3);
    if (schema == 1) {  // no stamps: accessed and confirmed when fetched
      CHECK(fetched == std::vector<std::int64_t>{1234, 1234, 1234});
      CHECK(accessed == fetched);
    } else {  // records in LRU order, the stamps' times kept
      CHECK(order == std::vector<std::string>{keys[2].info.fingerprint, keys[0].info.fingerprint,
                                              keys[1].info.fingerprint});
      CHECK(fetched == std::vector<std::int64_t>{5678, 5678, 5678});
      CHECK(accessed == std::vector<std::int64_t>{1000, 2000, 3000});
    }
    for (std::size_t i = 0; i < 3; ++i) {  // every identifier still finds its key
      CHECK(found(store, SearchKind::long_keyid, keys[i].info.fingerprint.substr(24)) ==
            std::vector<std::string>{keys[i].info.fingerprint});
    }
    WriteBatch b;  // and the migrated cache takes writes
    b.keys.push_back({keys[3], 9000, "bulk"});
    REQUIRE_FALSE(write_sync(store, std::move(b)));
    CHECK(store.stats().keys == 4);
    CHECK(store.verify().empty());
  }
  RawCache raw(dir / "cache", true);  // the old tables are gone
  MDB_dbi gone;
  for (const char* t : {"keys", "stamps", "lru"}) CHECK(mdb_dbi_open(raw.txn, t, 0, &gone) == MDB_NOTFOUND);
}

TEST_CASE("verify names each inconsistency between the tables", "[cache][unit]") {
  TempDir dir;
  const auto& keys = bulk_keys();
  const Fingerprint a = fpr_of(keys[0].info.fingerprint), b = fpr_of(keys[1].info.fingerprint);
  {
    Store store({dir / "cache", 64 << 20});
    WriteBatch batch;
    for (std::size_t i = 0; i < 3; ++i) batch.keys.push_back({keys[i], 1000, "bulk"});
    REQUIRE_FALSE(write_sync(store, std::move(batch)));
    REQUIRE(store.verify().empty());
  }
  {
    RawCache raw(dir / "cache", false);
    const MDB_dbi keymap = raw.table("keymap"), records = raw.table("records"), ids = raw.table("ids");
    // a's record goes missing; b's identifier by long key ID goes missing; a record nobody owns
    const auto slot = detail::decode_slot(*raw.get(keymap, a.bytes()));
    REQUIRE(slot);
    const std::string number = detail::record_key(slot->record);
    MDB_val k = lmdb::val(number);
    REQUIRE(mdb_del(raw.txn, records, &k, nullptr) == 0);
    const std::string id = "K" + std::string(b.bytes().substr(12));
    MDB_val ik = lmdb::val(id), iv = lmdb::val(b.bytes());
    REQUIRE(mdb_del(raw.txn, ids, &ik, &iv) == 0);
    raw.put(records, detail::record_key(999999), std::string(b.bytes()) + "junk");
    raw.commit();
  }
  StoreOptions ro(dir / "cache", 64 << 20);
  ro.read_only = true;
  const auto problems = Store(ro).verify();
  std::string all;
  for (const auto& p : problems) all += p + "\n";
  INFO(all);
  CHECK(problems.size() == 3);
  CHECK_THAT(all, Catch::Matchers::Contains("key " + a.hex() + ": record"));
  CHECK_THAT(all, Catch::Matchers::Contains("missing"));
  CHECK_THAT(all, Catch::Matchers::Contains("key " + b.hex() + ": identifier K entry missing"));
  CHECK_THAT(all, Catch::Matchers::Contains("record 999999 belongs to no key"));
}

namespace {

// The share of data.mdb's pages in the page cache, by mincore(2); after dropping them first
// when `drop` (POSIX_FADV_DONTNEED: clean pages of this file only).
double resident_share(const std::string& file, bool drop) {
  const int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  REQUIRE(fd >= 0);
  struct stat st{};
  REQUIRE(::fstat(fd, &st) == 0);
  const auto size = static_cast<std::size_t>(st.st_size);
  if (drop) {
    ::fdatasync(fd);
    REQUIRE(::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED) == 0);
  }
  void* map = ::mmap(nullptr, size, PROT_READ, MAP_SHARED, fd, 0);
  REQUIRE(map != MAP_FAILED);
  const long page = ::sysconf(_SC_PAGESIZE);
  std::vector<unsigned char> in((size + page - 1) / page);
  REQUIRE(::mincore(map, size, in.data()) == 0);
  ::munmap(map, size);
  ::close(fd);
  return static_cast<double>(std::count_if(in.begin(), in.end(), [](unsigned char c) { return c & 1; })) /
         static_cast<double>(in.size());
}

}  // namespace

TEST_CASE("warm_up reads the cache file into the page cache after opening", "[cache][unit]") {
  TempDir dir;
  {
    Store store({dir / "cache", 64 << 20});
    WriteBatch b;
    for (const auto& k : bulk_keys()) b.keys.push_back({k, 1000, "bulk"});
    REQUIRE_FALSE(write_sync(store, std::move(b)));
  }
  const std::string file = dir / "cache/data.mdb";
  REQUIRE(resident_share(file, true) < 0.5);
  {
    Store cold({dir / "cache", 64 << 20});  // without warm_up: only what opening reads
    CHECK(resident_share(file, false) < 0.5);
  }
  REQUIRE(resident_share(file, true) < 0.5);
  StoreOptions o(dir / "cache", 64 << 20);
  o.warm_up = true;
  Store store(o);
  CHECK(hkpgw::test::eventually([&] { return resident_share(file, false) > 0.9; }));
}

TEST_CASE("a cache from a newer build, or in use by another writer, is refused clearly",
          "[cache][unit]") {
  TempDir dir;
  {
    Store store({dir / "cache", 64 << 20});
    SECTION("a second writer is refused while the first holds the cache") {
      try {
        Store second({dir / "cache", 64 << 20});
        FAIL("a second writer opened the cache");
      } catch (const StoreError& e) {
        CHECK_THAT(e.what(), Catch::Matchers::Contains("in use by another process"));
      }
      StoreOptions ro(dir / "cache", 64 << 20);
      ro.read_only = true;
      Store reader(ro);  // readers are fine
      CHECK(reader.readable());
      return;
    }
  }
  {
    RawCache raw(dir / "cache", false);
    raw.put(raw.table("meta"), "schema", "99");
    raw.commit();
  }
  try {
    Store store({dir / "cache", 64 << 20});
    FAIL("opened a schema-99 cache");
  } catch (const StoreError& e) {
    CHECK_THAT(e.what(), Catch::Matchers::Contains("schema version 99, written by a newer build"));
  }
}

TEST_CASE("a write that finds the map full gets an eviction round, one retry, then its error",
          "[cache][unit]") {
  TempDir dir;
  std::atomic<std::int64_t> clock{1000};
  StoreOptions o(dir / "cache", 512 << 10);
  o.map_bytes = 1 << 20;  // as the default would be (twice max_size), without the 64 MiB floor
  o.now = [&] { return clock.load(); };
  std::atomic<std::size_t> rounds{0};
  o.on_evict = [&](const StoreOptions::Evicted&) { ++rounds; };
  Store store(o);
  const auto& keys = bulk_keys();
  auto batch = [&](std::size_t from, std::size_t to) {
    WriteBatch b;
    for (std::size_t i = from; i < to; ++i) b.keys.push_back({keys[i], clock.load(), "bulk"});
    ++clock;
    return write_sync(store, std::move(b));
  };
  for (std::size_t at = 0; at < 200; at += 50) REQUIRE_FALSE(batch(at, at + 50));
  const std::size_t rounds_before = rounds.load();
  // One batch larger than all the room the map has: MDB_MAP_FULL, a round of eviction, the
  // retry, and still the error for this batch (its caller serves the answer uncached).
  CHECK(store.stats().write_failures == 0);
  const std::error_code big = batch(200, 600);
  CHECK(big);
  CHECK(store.stats().write_failures == 1);  // /metrics: cache_write_failures_total
  CHECK(rounds.load() > rounds_before);
  // The store stays whole and takes the next batch.
  CHECK_FALSE(batch(200, 250));
  store.flush();
  CHECK(found(store, SearchKind::fingerprint, keys[249].info.fingerprint).size() == 1);
  CHECK(found(store, SearchKind::fingerprint, keys[599].info.fingerprint).empty());
  CHECK(store.verify().empty());
}

TEST_CASE("every commit reports what it changed to on_commit, eviction included",
          "[cache][unit]") {
  TempDir dir;
  CommitLog log;
  StoreOptions o(dir / "cache", 256 << 10);
  log.attach(o);
  Store store(o);
  auto reported = [&] { return log.take(); };

  const auto alice = keys_of("alice.asc");
  const Fingerprint fpr = fpr_of(alice.front().info.fingerprint);
  WriteBatch put;
  put.keys.push_back({alice.front(), 1000, "ubuntu"});
  put.queries.emplace_back("get:e:alice@example.org", QueryRecord{1000, "ubuntu", QueryKind::not_found, {}, {}});
  REQUIRE_FALSE(store.write_and_wait(std::move(put)));
  auto r = reported();
  REQUIRE(r.size() == 1);
  CHECK(r[0].keys == std::vector<Fingerprint>{fpr});
  CHECK(r[0].queries == std::vector<std::string>{"get:e:alice@example.org"});
  CHECK_FALSE(r[0].eviction);

  // Outbox bookkeeping and empty batches change no key and no query: nothing to report.
  WriteBatch outbox;
  outbox.outbox_put.push_back({"ubuntu", fpr, 2000, 1, "down"});
  REQUIRE_FALSE(store.write_and_wait(std::move(outbox)));
  REQUIRE_FALSE(store.write_and_wait({}));
  CHECK(reported().empty());

  WriteBatch purge;
  purge.purge.push_back(fpr);
  REQUIRE_FALSE(store.write_and_wait(std::move(purge)));
  r = reported();
  REQUIRE(r.size() == 1);
  CHECK(r[0].keys == std::vector<Fingerprint>{fpr});

  // Past max_size the writer evicts on its own: the evicted keys are reported, as an eviction.
  const auto& keys = bulk_keys();
  for (std::size_t at = 0; at < keys.size(); at += 100) {
    WriteBatch b;
    for (std::size_t i = at; i < at + 100; ++i) b.keys.push_back({keys[i], 1000, "bulk"});
    REQUIRE_FALSE(store.write_and_wait(std::move(b)));
  }
  // (The writer may evict again on its own between two looks: count until the two agree.)
  std::size_t evicted = 0;
  CHECK(hkpgw::test::eventually(
      [&] {
        for (const auto& c : reported()) {
          if (c.eviction) evicted += c.keys.size();
        }
        return evicted > 0 && evicted == store.stats().evicted;
      },
      std::chrono::seconds(5)));
}
