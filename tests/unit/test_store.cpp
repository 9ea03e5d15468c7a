// The LMDB store with real files in a fresh temp dir and real keys made by gpg.
#include <catch2/catch.hpp>

#include <filesystem>
#include <future>

#include "cache/store.hpp"
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

std::error_code write_sync(Store& store, WriteBatch batch) {
  std::promise<std::error_code> done;
  store.write(std::move(batch), [&](std::error_code ec) { done.set_value(ec); });
  return done.get_future().get();
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
