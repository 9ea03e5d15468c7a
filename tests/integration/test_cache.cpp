// The cache as operators handle it: the cache subcommands on real LMDB files, a gateway killed
// with SIGKILL in the middle of heavy writes, flooded keys cleaned on their way through, and
// index flags that follow a key's later copies.
#include <catch2/catch.hpp>

#include <regex>

#include <csignal>
#include <filesystem>
#include <future>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

#include "hkp/keyring.hpp"
#include "support/actors.hpp"
#include "support/forge.hpp"

using namespace hkpgw;
using namespace hkpgw::test;
using Catch::Matchers::Contains;

namespace {

// A config naming only a cache directory (and loopback listeners), for the cache subcommands.
std::string cache_config(const TempDir& dir, const std::string& name,
                         const std::string& extra = "") {
  const std::string path = dir / (name + ".toml");
  write_file(path, "upstream = []\n[server]\nlisten = [\"127.0.0.1:0\"]\n[admin]\nlisten = "
                   "\"127.0.0.1:0\"\n[cache]\npath = \"" +
                       dir / name + "\"\n" + extra);
  return path;
}

// The HKP listener's address of a gateway started on a cache_config(), once it has started.
std::string hkp_address(Process& gw) {
  REQUIRE(gw.wait_for("event=started"));
  std::string addr;
  std::istringstream in(gw.err());
  for (std::string line; std::getline(in, line);) {
    if (field(line, "listener") == "hkp") addr = field(line, "addr");
  }
  return addr;
}

RunResult cache_cmd(const std::string& config, std::vector<std::string> args) {
  std::vector<std::string> argv = {HKPGW_BINARY, "--config", config, "cache"};
  argv.insert(argv.end(), args.begin(), args.end());
  return run(argv);
}

std::string stat_line(const RunResult& r, const std::string& key) {
  std::istringstream in(r.out);
  for (std::string line; std::getline(in, line);) {
    if (line.starts_with(key + ": ")) return line.substr(key.size() + 2);
  }
  return "";
}

// N fresh keys in DIR/PREFIX.asc; their fingerprints in `fprs` when asked for.
std::string bulk(const TempDir& dir, int n, const std::string& prefix = "bulk",
                 std::vector<std::string>* fprs = nullptr) {
  const std::string file = dir / (prefix + ".asc");
  const auto r = run({HKPGW_KEYGEN, std::to_string(n), file, prefix});
  REQUIRE(r.exit_code == 0);
  if (fprs) {
    std::istringstream in(r.out);
    for (std::string line; std::getline(in, line);) fprs->push_back(line);
  }
  return file;
}

// Fingerprints of the keys in an export, read with RNP (gpg takes seconds for thousands).
std::set<std::string> fingerprints_in(const std::string& armored) {
  config::KeysConfig limits;
  std::set<std::string> out;
  for (const auto& k : hkp::parse_keys(armored, limits).keys) out.insert(k.info.fingerprint);
  return out;
}

}  // namespace

TEST_CASE("cache import and export round-trip 300 keys", "[integration][cache]") {
  TempDir dir;
  const std::string keys = bulk(dir, 300);
  const std::string first = cache_config(dir, "first"), second = cache_config(dir, "second");

  const auto imported = cache_cmd(first, {"import", keys});
  REQUIRE(imported.exit_code == 0);
  CHECK_THAT(imported.out, Contains("300 keys (300 added, 0 updated, 0 unchanged), 0 rejected"));
  const auto again = cache_cmd(first, {"import", keys});
  CHECK_THAT(again.out, Contains("300 keys (0 added, 0 updated, 300 unchanged)"));
  CHECK(stat_line(cache_cmd(first, {"stats"}), "keys") == "300");
  const auto verified = cache_cmd(first, {"verify"});
  CHECK(verified.exit_code == 0);
  CHECK_THAT(verified.out, Contains("OK: 300 keys"));

  const std::string exported = dir / "export.asc";
  REQUIRE(cache_cmd(first, {"export", exported}).exit_code == 0);
  REQUIRE(cache_cmd(second, {"import", exported}).exit_code == 0);
  const std::string exported2 = dir / "export2.asc";
  REQUIRE(cache_cmd(second, {"export", exported2}).exit_code == 0);
  CHECK(read_file(exported) == read_file(exported2));  // same keys, same bytes

  Gpg gpg;
  CHECK(gpg({"--import", exported}).exit_code == 0);
  CHECK(gpg.fingerprints().size() == 300);
}

TEST_CASE("cache compact gives back what purged and evicted keys left", "[integration][cache]") {
  TempDir dir;
  std::vector<std::string> fprs;
  const std::string keys = bulk(dir, 300, "bulk", &fprs);
  REQUIRE(fprs.size() == 300);
  const std::string cfg = cache_config(dir, "cache");
  REQUIRE(cache_cmd(cfg, {"import", keys}).exit_code == 0);
  std::vector<std::string> purge = {"purge"};
  purge.insert(purge.end(), fprs.begin(), fprs.begin() + 250);
  REQUIRE(cache_cmd(cfg, purge).exit_code == 0);
  const auto file_bytes = [&] { return std::stoull(stat_line(cache_cmd(cfg, {"stats"}), "cache_file_bytes")); };
  const std::uint64_t before = file_bytes();  // LMDB keeps freed pages for reuse: no smaller
  {  // A file far larger than its pages in use (made so here: extended, sparse) gets a hint.
    std::filesystem::resize_file(dir / "cache/data.mdb", 100ULL << 20);
    Process gw({HKPGW_BINARY, "--config", cfg}, dir / "gw-big");
    const auto line = gw.wait_for("event=cache_file_oversized");
    REQUIRE(line);
    CHECK_THAT(*line, Contains("file_bytes=104857600"));
    CHECK_THAT(*line, Contains("cache compact"));
    REQUIRE(gw.wait_for("event=started"));
    gw.signal(SIGTERM);
    REQUIRE(gw.wait() == 0);
  }

  const auto r = cache_cmd(cfg, {"compact"});
  REQUIRE(r.exit_code == 0);
  CHECK_THAT(r.out, Contains("compacted"));
  const std::uint64_t after = file_bytes();
  INFO("data.mdb " << before << " -> " << after);
  CHECK(after * 2 < before);
  {  // and is compact now: no hint
    Process gw({HKPGW_BINARY, "--config", cfg}, dir / "gw-compact");
    REQUIRE(gw.wait_for("event=started"));
    CHECK_THAT(gw.err(), !Contains("cache_file_oversized"));
  }
  CHECK(stat_line(cache_cmd(cfg, {"stats"}), "keys") == "50");
  CHECK(cache_cmd(cfg, {"verify"}).exit_code == 0);
  CHECK_FALSE(std::filesystem::exists(dir / "cache/compact.tmp"));
  // The compacted cache serves and takes writes.
  const std::string exported = dir / "left.asc";
  REQUIRE(cache_cmd(cfg, {"export", exported}).exit_code == 0);
  CHECK(fingerprints_in(read_file(exported)) == std::set<std::string>(fprs.begin() + 250, fprs.end()));
  REQUIRE(cache_cmd(cfg, {"import", keys}).exit_code == 0);
  CHECK(stat_line(cache_cmd(cfg, {"stats"}), "keys") == "300");
  CHECK(cache_cmd(cfg, {"verify"}).exit_code == 0);
}

TEST_CASE("cache import takes a large export a chunk of 1000 keys at a time", "[integration][cache]") {
  TempDir dir;
  const std::string keys = bulk(dir, 2500, "large");
  const std::string cfg = cache_config(dir, "cache");
  const auto imported = cache_cmd(cfg, {"import", keys});
  REQUIRE(imported.exit_code == 0);
  CHECK_THAT(imported.out, Contains("2500 keys (2500 added, 0 updated, 0 unchanged), 0 rejected"));
  CHECK(stat_line(cache_cmd(cfg, {"stats"}), "keys") == "2500");
  CHECK(cache_cmd(cfg, {"verify"}).exit_code == 0);
}

TEST_CASE("imported keys answer address lookups from the cache, without asking upstream",
          "[integration][cache]") {
  TempDir dir;
  // The one upstream accepts connections and never answers: a lookup that asks it waits for
  // its timeout (and is then served stale), one that does not is a plain hit.
  TestKeyserver ks(dir, "ks", "server", "hang", {});
  std::string cfg = cache_config(dir, "cache");
  write_file(cfg, std::regex_replace(read_file(cfg), std::regex("upstream = \\[\\]\n"), "") +
                      "[upstreams]\nca_file = \"" + data_dir() + "/ca.pem\"\n"
                      "request_timeout = \"3s\"\n[[upstream]]\nname = \"ks\"\nurl = \"" +
                      ks.url() + "\"\n");
  REQUIRE(cache_cmd(cfg, {"import", data_dir() + "/alice.asc"}).exit_code == 0);
  Process gw({HKPGW_BINARY, "--config", cfg}, dir / "gw");
  const std::string addr = hkp_address(gw);
  const auto r = http_get(addr, "/pks/lookup?op=get&options=mr&search=alice@example.org");
  CHECK(r.status == 200);
  CHECK(r.header("x-hkp-cache") == "hit");
  CHECK_THAT(r.body, Contains("BEGIN PGP PUBLIC KEY BLOCK"));
  CHECK(ks.lookups() == 0);
}

TEST_CASE("a truncated data.mdb is refused with one line, not a SIGBUS",
          "[integration][cache][hardening]") {
  TempDir dir;
  const std::string cfg = cache_config(dir, "cache");
  REQUIRE(cache_cmd(cfg, {"import", data_dir() + "/upstream-keys.asc"}).exit_code == 0);
  const std::string file = dir / "cache/data.mdb";
  const auto size = std::filesystem::file_size(file);
  REQUIRE(size > 4 * 4096);
  std::filesystem::resize_file(file, size / 2);  // a copy that stopped halfway

  const auto verify = cache_cmd(cfg, {"verify"});
  INFO(verify.err);
  CHECK(verify.exit_code == 1);  // 135 (SIGBUS) before
  CHECK_THAT(verify.err, Contains("data.mdb is truncated"));
  CHECK_THAT(verify.err, Contains("move the directory aside"));
  const auto gw = run({HKPGW_BINARY, "--config", cfg});
  INFO(gw.err);
  CHECK(gw.exit_code == 1);
  CHECK_THAT(gw.err, Contains("data.mdb is truncated"));
}

TEST_CASE("cache commands refuse what they cannot do safely, with a clear message",
          "[integration][cache]") {
  TempDir dir;
  const std::string cfg = cache_config(dir, "cache");
  SECTION("secret key material: nothing imported") {
    const auto r = cache_cmd(cfg, {"import", data_dir() + "/alice-secret.asc"});
    CHECK(r.exit_code == 1);
    CHECK_THAT(r.err, Contains("holds secret key material: nothing of it was imported"));
    CHECK(stat_line(cache_cmd(cfg, {"stats"}), "keys") == "0");
  }
  SECTION("not OpenPGP") {
    write_file(dir / "junk.asc", "hello, I am not a key\n");
    const auto r = cache_cmd(cfg, {"import", dir / "junk.asc"});
    CHECK(r.exit_code == 1);
    CHECK_THAT(r.err, Contains("holds no OpenPGP keys"));
  }
  SECTION("a running gateway holds the cache: import, purge and compact refuse, stats and verify work") {
    REQUIRE(cache_cmd(cfg, {"import", data_dir() + "/alice.asc"}).exit_code == 0);
    Process gw({HKPGW_BINARY, "--config", cfg}, dir / "gw");
    REQUIRE(gw.wait_for("event=started"));
    const auto r = cache_cmd(cfg, {"import", data_dir() + "/bob.asc"});
    CHECK(r.exit_code == 1);
    CHECK_THAT(r.err, Contains("is in use by another process"));
    CHECK(cache_cmd(cfg, {"purge", fixture("ALICE_FPR")}).exit_code == 1);
    const auto compacted = cache_cmd(cfg, {"compact"});
    CHECK(compacted.exit_code == 1);
    CHECK_THAT(compacted.err, Contains("is in use by another process"));
    CHECK(stat_line(cache_cmd(cfg, {"stats"}), "keys") == "1");
    CHECK(cache_cmd(cfg, {"verify"}).exit_code == 0);
  }
  SECTION("purge removes a key and everything that indexes it") {
    REQUIRE(cache_cmd(cfg, {"import", data_dir() + "/upstream-keys.asc"}).exit_code == 0);
    const auto r = cache_cmd(cfg, {"purge", fixture("ALICE_FPR"), std::string(40, 'C')});
    CHECK(r.exit_code == 1);  // one of the two was not cached
    CHECK_THAT(r.out, Contains("purged " + fixture("ALICE_FPR")));
    CHECK_THAT(r.err, Contains("not cached: " + std::string(40, 'C')));
    CHECK(stat_line(cache_cmd(cfg, {"stats"}), "keys") == "6");
    CHECK(cache_cmd(cfg, {"verify"}).exit_code == 0);
    Process gw({HKPGW_BINARY, "--config", cfg}, dir / "gw");
    const std::string addr = hkp_address(gw);
    CHECK(http_get(addr, "/pks/lookup?op=get&search=alice@example.org").status == 404);
    CHECK(http_get(addr, "/pks/lookup?op=get&search=0x" + fixture("BOB_FPR")).status == 200);
  }
}

TEST_CASE("SIGKILL in the middle of heavy writes loses nothing acknowledged", "[integration][cache]") {
  TempDir dir;
  std::vector<std::string> fprs;
  const std::string keys = bulk(dir, 1500, "storm", &fprs);
  REQUIRE(fprs.size() == 1500);
  TestKeyserver ks(dir, "ks", "server", "normal", {keys});
  std::vector<std::string> acknowledged;
  std::mutex mutex;
  {
    Gateway gw{GatewayConfig(dir).upstreams({{"ks", ks.url()}})};
    REQUIRE(gw.started());
    std::atomic<bool> stop{false};
    std::atomic<std::size_t> next{0};
    std::vector<std::thread> clients;
    for (int c = 0; c < 8; ++c) {
      clients.emplace_back([&] {
        while (!stop) {
          const std::size_t i = next++;
          if (i >= fprs.size()) return;
          const auto r = gw.get("/pks/lookup?op=get&search=0x" + fprs[i]);
          if (r.status == 200) {
            std::lock_guard lock(mutex);
            acknowledged.push_back(fprs[i]);
          }
        }
      });
    }
    // Kill once a few hundred keys are in, while the clients keep writing (bounded at 30 s: a
    // loaded machine, the ASan build under a parallel ctest, needs more than the usual 2-4 s).
    for (int i = 0; i < 3000; ++i) {
      {
        std::lock_guard lock(mutex);
        if (acknowledged.size() >= 300) break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    std::vector<std::string> before_kill;
    {
      std::lock_guard lock(mutex);
      before_kill = acknowledged;
    }
    gw.process().signal(SIGKILL);
    gw.process().wait();
    stop = true;
    for (auto& t : clients) t.join();
    acknowledged = before_kill;  // answers racing the kill may or may not be there; these must
  }
  REQUIRE(acknowledged.size() >= 300);
  const std::string cfg = dir / "gateway.toml";  // the killed gateway's config (same cache)
  const auto verified = cache_cmd(cfg, {"verify"});
  CHECK(verified.exit_code == 0);
  CHECK_THAT(verified.out, Contains("OK: "));
  const std::set<std::string> cached = fingerprints_in(cache_cmd(cfg, {"export"}).out);
  std::size_t missing = 0;
  for (const auto& f : acknowledged) missing += !cached.contains(f);
  CHECK(missing == 0);
  INFO("acknowledged " << acknowledged.size() << ", cached after the crash " << cached.size());
  CHECK(cached.size() >= acknowledged.size());
}

TEST_CASE("a flooded key is served small and usable, and the drops are counted",
          "[integration][cache]") {
  TempDir dir;
  const std::string file = dir / "flooded.gpg";
  write_file(file, flooded(key_packets(read_file(data_dir() + "/alice.asc")), 2500));
  TestKeyserver ks(dir, "ks", "server", "normal", {file});
  Gateway gw{GatewayConfig(dir).upstreams({{"ks", ks.url()}})};
  REQUIRE(gw.started());
  Gpg gpg;
  REQUIRE(gpg({"--recv-keys", fixture("ALICE_FPR")}, gw.hkp_url()).exit_code == 0);
  const auto sigs = gpg({"--with-colons", "--list-sigs", fixture("ALICE_FPR")});
  std::size_t n = 0;
  for (auto at = sigs.out.find("\nsig:"); at != std::string::npos; at = sigs.out.find("\nsig:", at + 1)) ++n;
  CHECK(n == 3);  // its own self-signatures, not 2503
  CHECK_THAT(gw.log(), Contains("event=keys_cleaned upstream=ks dropped=third_party_signature:2500"));
  CHECK_THAT(gw.get("/pks/lookup?op=stats&options=mr").body,
             Contains("\"keys_dropped\":{\"third_party_signature\":2500}"));
}

TEST_CASE("index flags follow later copies: revocation added, expiry extended",
          "[integration][cache]") {
  TempDir dir;
  TestKeyserver old_world(dir, "old", "server", "normal", {"carol-unrevoked.asc", "dave.asc"});
  TestKeyserver new_world(dir, "new", "server", "normal", {"carol.asc", "dave-extended.asc"});
  const std::string carol = "/pks/lookup?op=index&options=mr&search=0x" + fixture("CAROL_FPR");
  const std::string dave = "/pks/lookup?op=index&options=mr&search=0x" + fixture("DAVE_FPR");
  auto pub_flags = [](const std::string& body) {
    const auto at = body.find("\npub:");
    const auto end = body.find('\n', at + 1);
    const std::string line = body.substr(at + 1, end - at - 1);
    return line.substr(line.rfind(':') + 1);
  };
  {
    Gateway gw{GatewayConfig(dir).upstreams({{"old", old_world.url()}})};
    REQUIRE(gw.started());
    CHECK(pub_flags(gw.get(carol).body) == "");
    CHECK(pub_flags(gw.get(dave).body) == "e");
  }
  Gateway gw{GatewayConfig(dir)
                 .upstreams({{"new", new_world.url()}})
                 .cache("fresh_for = \"0s\"\nstale_while_revalidate = \"0s\"\n")};
  REQUIRE(gw.started());
  const HttpResult c = gw.get(carol);
  CHECK(c.header("x-hkp-cache") == "revalidated");
  CHECK(pub_flags(c.body) == "r");
  CHECK(pub_flags(gw.get(dave).body) == "");
  // And the HTML index says the same.
  const HttpResult html = gw.get("/pks/lookup?op=index&search=0x" + fixture("CAROL_FPR"));
  CHECK_THAT(html.body, Contains("revoked"));
}

TEST_CASE("cache backup copies a running gateway's cache whole, and cache restore puts it back",
          "[integration][cache]") {
  namespace fs = std::filesystem;
  TempDir dir;
  std::vector<std::string> fprs;
  const std::string keys = bulk(dir, 40, "bulk", &fprs);
  const std::string cfg = cache_config(dir, "cache");
  REQUIRE(cache_cmd(cfg, {"import", keys}).exit_code == 0);
  const std::string backup = dir / "backup.mdb";
  {
    Process gw({HKPGW_BINARY, "--config", cfg}, dir / "gw-running");
    const std::string addr = hkp_address(gw);
    REQUIRE(http_get(addr, get_target(fprs[0])).status == 200);  // it serves while we copy
    const auto r = cache_cmd(cfg, {"backup", backup});
    INFO(r.out << r.err);
    REQUIRE(r.exit_code == 0);
    CHECK_THAT(r.out, Contains("40 keys"));
    CHECK(http_get(addr, get_target(fprs[1])).status == 200);
    // Restoring under a running gateway is refused, and changes nothing.
    const auto busy = cache_cmd(cfg, {"restore", backup});
    CHECK(busy.exit_code == 1);
    CHECK_THAT(busy.err, Contains("in use by another process"));
    gw.signal(SIGTERM);
    REQUIRE(gw.wait() == 0);
  }
  // Query records are personal data: the copy is the owner's alone.
  CHECK((fs::status(backup).permissions() & fs::perms::all) ==
        (fs::perms::owner_read | fs::perms::owner_write));
  CHECK_FALSE(fs::exists(backup + ".tmp"));

  // Half the cache lost; the restore brings back every key, with the file's mode kept.
  std::vector<std::string> purge = {"purge"};
  purge.insert(purge.end(), fprs.begin(), fprs.begin() + 20);
  REQUIRE(cache_cmd(cfg, purge).exit_code == 0);
  REQUIRE(stat_line(cache_cmd(cfg, {"stats"}), "keys") == "20");
  fs::permissions(dir / "cache/data.mdb",
                  fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read);
  const auto restored = cache_cmd(cfg, {"restore", backup});
  INFO(restored.out << restored.err);
  REQUIRE(restored.exit_code == 0);
  CHECK_THAT(restored.out, Contains("40 keys"));
  CHECK(stat_line(cache_cmd(cfg, {"stats"}), "keys") == "40");
  CHECK(cache_cmd(cfg, {"verify"}).exit_code == 0);
  CHECK((fs::status(dir / "cache/data.mdb").permissions() & fs::perms::all) ==
        (fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read));
  CHECK_FALSE(fs::exists(dir / "cache/restore.tmp"));
  {  // and a gateway serves from it, with no upstream at all
    Process gw({HKPGW_BINARY, "--config", cfg}, dir / "gw-restored");
    const std::string addr = hkp_address(gw);
    for (const auto& f : {fprs[0], fprs[19], fprs[39]}) {
      const HttpResult got = http_get(addr, get_target(f));
      CHECK(got.status == 200);
      CHECK(got.header("x-hkp-cache") == "hit");
    }
  }

  // Something that is not a backup is refused before the cache is touched.
  write_file(dir / "not-a-backup.mdb", std::string(64 << 10, 'x'));
  const auto bad = cache_cmd(cfg, {"restore", dir / "not-a-backup.mdb"});
  CHECK(bad.exit_code == 1);
  CHECK_THAT(bad.err, Contains("nothing restored"));
  CHECK(stat_line(cache_cmd(cfg, {"stats"}), "keys") == "40");
  CHECK(cache_cmd(cfg, {"restore", dir / "missing.mdb"}).exit_code == 1);
  CHECK(cache_cmd(cfg, {"backup"}).exit_code == 2);
}

TEST_CASE("cache compact keeps data.mdb's mode", "[integration][cache]") {
  namespace fs = std::filesystem;
  TempDir dir;
  const std::string keys = bulk(dir, 20, "bulk");
  const std::string cfg = cache_config(dir, "cache");
  REQUIRE(cache_cmd(cfg, {"import", keys}).exit_code == 0);
  const auto mode = fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read;
  fs::permissions(dir / "cache/data.mdb", mode);
  REQUIRE(cache_cmd(cfg, {"compact"}).exit_code == 0);
  CHECK((fs::status(dir / "cache/data.mdb").permissions() & fs::perms::all) == mode);
}

TEST_CASE("cache import applies revocation certificates to cached keys", "[integration][cache]") {
  TempDir dir;
  const std::string cfg = cache_config(dir, "cache");
  // What the cache serves for carol, as gpg reads it.
  auto carol_as_gpg_sees_her = [&] {
    const std::string exported = dir / "carol-export.asc";
    REQUIRE(cache_cmd(cfg, {"export", exported}).exit_code == 0);
    Gpg gpg;
    return gpg({"--with-colons", "--show-keys", exported}).out;
  };
  auto revoked = [](const std::string& colons) { return colons.starts_with("pub:r:"); };
  REQUIRE(cache_cmd(cfg, {"import", data_dir() + "/carol-unrevoked.asc"}).exit_code == 0);
  REQUIRE_FALSE(revoked(carol_as_gpg_sees_her()));

  SECTION("a revocation certificate alone, as gpg wrote it") {
    const auto r = cache_cmd(cfg, {"import", data_dir() + "/carol-revocation.asc"});
    INFO(r.out << r.err);
    CHECK(r.exit_code == 0);
    CHECK_THAT(r.out,
               Contains("revoked: " + fixture("CAROL_FPR") + " (revocation certificate applied)"));
    CHECK(revoked(carol_as_gpg_sees_her()));
    // Again: nothing new, and said so.
    const auto again = cache_cmd(cfg, {"import", data_dir() + "/carol-revocation.asc"});
    CHECK(again.exit_code == 0);
    CHECK_THAT(again.out, Contains("revocation already applied: " + fixture("CAROL_FPR")));
    CHECK(cache_cmd(cfg, {"verify"}).exit_code == 0);
  }
  SECTION("in front of other keys in one file") {
    write_file(dir / "mixed.asc", read_file(data_dir() + "/carol-revocation.asc") +
                                      read_file(data_dir() + "/bob.asc"));
    const auto r = cache_cmd(cfg, {"import", dir / "mixed.asc"});
    INFO(r.out << r.err);
    CHECK(r.exit_code == 0);
    CHECK_THAT(r.out, Contains("1 keys (1 added") && Contains("revoked: " + fixture("CAROL_FPR")));
    CHECK(revoked(carol_as_gpg_sees_her()));
    CHECK(stat_line(cache_cmd(cfg, {"stats"}), "keys") == "2");
  }
  SECTION("for a key the cache does not hold: named, nothing stored, exit 1") {
    const auto r = cache_cmd(cfg, {"import", data_dir() + "/frank-revocation.asc"});
    CHECK(r.exit_code == 1);
    CHECK_THAT(r.err, Contains("revocation certificate for key 0x") &&
                          Contains("is not cached: import the key with it"));
    CHECK(stat_line(cache_cmd(cfg, {"stats"}), "keys") == "1");
  }
  SECTION("whose signature does not verify: refused, the key unchanged, exit 1") {
    // The certificate with one byte of its signature changed (the last byte of the packet).
    const std::string binary = dir / "carol.rev";
    REQUIRE(run({"gpg", "--dearmor", "--output", binary, data_dir() + "/carol-revocation.asc"})
                .exit_code == 0);
    std::string forged = read_file(binary);
    REQUIRE(!forged.empty());
    forged.back() = static_cast<char>(forged.back() ^ 0x01);
    write_file(dir / "forged.rev", forged);
    const auto r = cache_cmd(cfg, {"import", dir / "forged.rev"});
    INFO(r.out << r.err);
    CHECK(r.exit_code == 1);
    CHECK_THAT(r.out + r.err, Contains("does not verify against key " + fixture("CAROL_FPR")));
    CHECK_FALSE(revoked(carol_as_gpg_sees_her()));
  }
}
