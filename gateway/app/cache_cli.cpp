#include "gateway/app/cache_cli.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>
#include <unordered_set>

#include "cache/merge.hpp"
#include "cache/store.hpp"
#include "gateway/http/stats.hpp"
#include "gateway/observe/clock.hpp"
#include "hkp/key_filter.hpp"
#include "hkp/keyring.hpp"
#include "hkp/keyring_stream.hpp"
#include "hkp/packets.hpp"

namespace hkpgw::gateway {

namespace {

constexpr std::size_t kImportBatch = 1000;       // keys per parse
constexpr std::size_t kImportCommitKeys = 10000;  // keys per commit

cache::StoreOptions options(const config::Config& cfg, bool read_only) {
  cache::StoreOptions o(cfg.cache.path, cfg.cache.max_size);
  o.read_only = read_only;
  return o;
}

int stats(const config::Config& cfg) {
  cache::Store store(options(cfg, true));
  const auto s = store.stats();
  std::cout << "cache: " << cfg.cache.path << " (schema " << s.schema << ")\n";
  for (const auto& [name, value] : gateway::cache_figures(s)) std::cout << name << ": " << value << "\n";
  std::cout << "used: " << (s.used_bytes * 100 / std::max<std::uint64_t>(1, s.max_bytes))
            << "% of max_size\n"
            << "bytes_per_key: " << (s.keys ? s.used_bytes / s.keys : 0) << "\n";
  return 0;
}

int verify(const config::Config& cfg) {
  cache::Store store(options(cfg, true));
  const auto problems = store.verify();
  const auto s = store.stats();
  for (const auto& p : problems) std::cout << "problem: " << p << "\n";
  if (problems.empty()) {
    std::cout << "OK: " << s.keys << " keys, " << s.identifiers << " identifiers, " << s.queries
              << " query records, consistent\n";
    return 0;
  }
  std::cout << problems.size() << " problems in " << cfg.cache.path << "\n";
  return 1;
}

int export_keys(const config::Config& cfg, const std::vector<std::string>& files) {
  cache::Store store(options(cfg, true));
  // Streamed: one armor block written a key at a time, memory independent of the cache's size.
  std::ofstream file;
  const bool to_file = !files.empty() && files[0] != "-";
  if (to_file) file.open(files[0], std::ios::binary | std::ios::trunc);
  std::ostream& out = to_file ? static_cast<std::ostream&>(file) : std::cout;
  std::string text;
  hkp::ArmorWriter armor(text, [&](std::string& t) {
    out.write(t.data(), static_cast<std::streamsize>(t.size()));
    t.clear();
  });
  const std::size_t n = store.visit_all([&](const cache::KeyRecordView& v) { armor.write(v.packets); });
  if (n > 0) {
    armor.finish();
  }
  out.flush();
  if (!out) {
    std::cerr << "hkp-gateway: cannot write \"" << (to_file ? files[0] : "-") << "\"\n";
    return 1;
  }
  std::cerr << "exported " << n << " keys\n";
  return 0;
}

// Whether the keyring holds secret key material anywhere: a first pass, packets framed only.
// Nothing of such a file is imported, so this has to be known before the first commit.
bool holds_secrets(const std::string& file) {
  std::ifstream in(file, std::ios::binary);
  hkp::KeyringStream stream(in, kImportBatch);
  while (auto chunk = stream.next()) {
    if (auto ps = hkp::split_packets(*chunk)) {
      for (const auto& p : *ps) {
        if (p.tag == hkp::tag::secret_key || p.tag == hkp::tag::secret_subkey) return true;
      }
    }
  }
  return stream.private_block();
}

// The length of the signature packets a chunk starts with, before its first key: 0 when it
// starts with a key (or cannot be framed: parse_keys then says what is wrong with it).
std::size_t leading_signatures(std::string_view chunk) {
  const auto packets = hkp::split_packets(chunk);
  if (!packets) return 0;
  std::size_t length = 0;
  for (const auto& p : *packets) {
    if (p.tag != hkp::tag::signature) break;
    length += p.whole.size();
  }
  return length;
}

// Bare revocation signatures against the cached keys of their issuers, as /pks/add applies
// them: each verified against the key it names. What changed goes into `batch`; one line per
// issuer into `lines`. Returns 1 when a certificate could not be applied (its key is not cached,
// or it does not verify), else 0.
int apply_revocations(cache::Store& store, const config::Config& cfg, const std::string& file,
                      const hkp::BareRevocations& revocations, std::string_view signatures,
                      std::int64_t now, cache::WriteBatch& batch, std::vector<std::string>& lines) {
  int status = 0;
  for (const std::string& keyid : revocations.issuers) {
    std::string fpr, packets;
    store.visit({hkp::SearchKind::long_keyid, keyid}, [&](const cache::KeyRecordView& v) {
      fpr = v.fingerprint.hex();
      packets = std::string(v.packets);
    });
    if (fpr.empty()) {
      std::cerr << "hkp-gateway: \"" << file << "\": revocation certificate for key 0x" << keyid
                << ", which is not cached: import the key with it\n";
      status = 1;
      continue;
    }
    auto applied = hkp::apply_signatures(packets, signatures, fpr, cfg.keys);
    if (!applied || (!applied->changed && !applied->key.info.revoked)) {
      std::cerr << "hkp-gateway: \"" << file
                << "\": the revocation certificate does not verify against key " << fpr
                << ": nothing of it was applied\n";
      status = 1;
      continue;
    }
    if (!applied->changed) {
      lines.push_back("revocation already applied: " + fpr);
      continue;
    }
    lines.push_back(applied->key.info.revoked
                        ? "revoked: " + fpr + " (revocation certificate applied)"
                        : "revocation applied to a subkey or user ID of " + fpr);
    batch.keys.push_back({std::move(applied->key), now, "import"});
  }
  return status;
}

int import_keys(const config::Config& cfg, const std::vector<std::string>& files) {
  cache::Store store(options(cfg, false));
  int status = 0;
  for (const std::string& file : files) {
    std::ifstream in(file, std::ios::binary);
    if (!in) {
      std::cerr << "hkp-gateway: cannot read \"" << file << "\"\n";
      status = 1;
      continue;
    }
    const auto started = std::chrono::steady_clock::now();
    // Streamed, a chunk of keys at a time (RNP keeps every key of one parse in memory, and
    // keyrings run to millions): memory does not grow with the file.
    bool secret = holds_secrets(file);
    hkp::KeyringStream stream(in, kImportBatch);
    std::size_t total = 0, added = 0, updated = 0, unchanged = 0;
    std::vector<hkp::RejectedKey> rejected;
    std::map<std::string, std::size_t> dropped;
    std::vector<std::string> revocation_lines;  // what each revocation certificate did
    bool any_openpgp = false;
    const std::int64_t now = unix_now();
    cache::WriteBatch batch;
    std::unordered_set<std::string> pending;  // fingerprints in `batch`
    // Imported keys answer address lookups from the cache: an op=get by email is complete only
    // with a query record for the address, which an upstream answer leaves and an import did
    // not (so every such lookup went upstream first). One per address no record answers yet.
    std::map<std::string, cache::QueryRecord> addresses;
    auto remember_addresses = [&](const hkp::ParsedKey& k) {
      for (const auto& u : k.info.uids) {
        if (u.email.empty()) continue;
        const std::string qkey =
            cache::query_key(hkp::Op::get, hkp::Search{hkp::SearchKind::email, u.email});
        auto it = addresses.find(qkey);
        if (it == addresses.end()) {
          const auto known = store.get_query(qkey);
          if (known && known->kind != cache::QueryKind::not_found) continue;
          const cache::QueryRecord record{now, "import", cache::QueryKind::fingerprints, {}, {}};
          it = addresses.emplace(qkey, record).first;
        }
        auto& fprs = it->second.fingerprints;
        if (std::find(fprs.begin(), fprs.end(), k.info.fingerprint) == fprs.end()) {
          fprs.push_back(k.info.fingerprint);
        }
      }
    };
    auto commit = [&] {
      for (auto& [qkey, record] : addresses) batch.queries.emplace_back(qkey, std::move(record));
      addresses.clear();
      const std::error_code result = store.write_and_wait(std::move(batch));
      batch = {};
      pending.clear();
      return result;
    };
    while (!secret) {
      auto chunk = stream.next();
      if (!chunk) break;
      // Revocation certificates in front of any key (a file gpg --gen-revoke wrote, or one put
      // before keys): applied to the cached keys they revoke. Signatures after a key belong to
      // that key, as in any keyring.
      if (const std::size_t bare = leading_signatures(*chunk)) {
        if (auto revocations = hkp::bare_revocations(std::string_view(*chunk).substr(0, bare))) {
          any_openpgp = true;
          if (!pending.empty()) {  // a cached copy must include this import's keys so far
            if (const std::error_code result = commit()) {
              std::cerr << "hkp-gateway: writing to the cache failed: " << result.message() << "\n";
              return 1;
            }
          }
          status |= apply_revocations(store, cfg, file, *revocations,
                                      std::string_view(*chunk).substr(0, bare), now, batch,
                                      revocation_lines);
          for (const auto& k : batch.keys) pending.insert(k.key.info.fingerprint);
          chunk->erase(0, bare);
          if (chunk->empty()) continue;
        }
      }
      auto parsed = hkp::parse_keys(*chunk, cfg.keys);  // the operator's own keyring: no budget
      if (parsed.secret_material) {
        secret = true;
        break;
      }
      any_openpgp = any_openpgp || !parsed.not_openpgp;
      total += parsed.keys.size();
      for (auto& r : parsed.rejected) rejected.push_back(std::move(r));
      for (const auto& [reason, n] : parsed.dropped) dropped[reason] += n;
      // A key met again before its batch was committed: commit first, so it merges with the
      // copy just read instead of replacing it.
      const bool again = std::any_of(parsed.keys.begin(), parsed.keys.end(), [&](const auto& k) {
        return pending.contains(k.info.fingerprint);
      });
      if (again) {
        if (const std::error_code result = commit()) {
          std::cerr << "hkp-gateway: writing to the cache failed: " << result.message() << "\n";
          return 1;
        }
      }
      const auto changes = cache::merge_with_cached(store, parsed.keys, cfg.keys);
      for (std::size_t i = 0; i < parsed.keys.size(); ++i) {
        switch (changes[i]) {
          case cache::Change::added: ++added; break;
          case cache::Change::updated: ++updated; break;
          case cache::Change::unchanged: ++unchanged; continue;  // the record is left alone
        }
        pending.insert(parsed.keys[i].info.fingerprint);
        remember_addresses(parsed.keys[i]);
        batch.keys.push_back({std::move(parsed.keys[i]), now, "import"});
      }
      // Fewer, larger commits: each rewrites the B-tree pages its keys land on, and at a
      // million keys a thousand-key commit rewrote most of a page per key.
      if (batch.keys.size() >= kImportCommitKeys) {
        if (const std::error_code result = commit()) {
          std::cerr << "hkp-gateway: writing to the cache failed: " << result.message() << "\n";
          return 1;
        }
      }
    }
    if (!secret && (!batch.keys.empty() || !addresses.empty())) {  // revocations' keys too
      if (const std::error_code result = commit()) {
        std::cerr << "hkp-gateway: writing to the cache failed: " << result.message() << "\n";
        return 1;
      }
    }
    if (!stream.error().empty()) {
      std::cerr << "hkp-gateway: \"" << file << "\": " << stream.error() << " (the keys before it"
                << " were imported)\n";
      status = 1;
    }
    if (secret) {
      std::cerr << "hkp-gateway: \"" << file
                << "\" holds secret key material: nothing of it was imported (export public keys "
                   "with gpg --export)\n";
      status = 1;
      continue;
    }
    if (!any_openpgp || (total == 0 && rejected.empty() && revocation_lines.empty())) {
      std::cerr << "hkp-gateway: \"" << file << "\" holds no OpenPGP keys\n";
      status = 1;
      continue;
    }
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    std::cout << "imported \"" << file << "\": " << total << " keys (" << added << " added, "
              << updated << " updated, " << unchanged << " unchanged), " << rejected.size()
              << " rejected";
    char rate[64];
    std::snprintf(rate, sizeof rate, "; %.2f s, %.0f keys/s", secs,
                  secs > 0 ? static_cast<double>(total) / secs : 0.0);
    std::cout << rate << "\n";
    for (const auto& r : rejected) {
      std::cout << "rejected " << (r.fingerprint.empty() ? "?" : r.fingerprint) << ": " << r.reason
                << "\n";
    }
    for (const auto& [reason, n] : dropped) std::cout << "cleaned: " << n << " " << reason << "\n";
    for (const auto& line : revocation_lines) std::cout << line << "\n";
  }
  return status;
}

int purge(const config::Config& cfg, const std::vector<std::string>& fingerprints) {
  cache::Store store(options(cfg, false));
  cache::WriteBatch batch;
  int status = 0;
  std::vector<std::string> found;
  for (const std::string& arg : fingerprints) {
    auto search = hkp::parse_search(arg);
    const auto f = search && search->kind == hkp::SearchKind::fingerprint
                       ? cache::Fingerprint::from_hex(search->value)
                       : std::nullopt;
    if (!f) {
      std::cerr << "hkp-gateway: \"" << arg << "\" is not a v4 fingerprint (40 hex digits)\n";
      status = 1;
      continue;
    }
    const std::string fpr = f->hex();
    if (store.visit_fingerprints(std::span(&*f, 1), [](const cache::KeyRecordView&) {}) == 0) {
      std::cerr << "not cached: " << fpr << "\n";
      status = 1;
      continue;
    }
    batch.purge.push_back(*f);
    found.push_back(fpr);
  }
  if (const std::error_code result = store.write_and_wait(std::move(batch))) {
    std::cerr << "hkp-gateway: purging failed: " << result.message() << "\n";
    return 1;
  }
  for (const auto& f : found) std::cout << "purged " << f << "\n";
  return status;
}

namespace fs = std::filesystem;

// `to` gets `from`'s permission bits, and its owner and group when we may set them (root): a file
// LMDB wrote anew is 0644 by the umask, where the operator's cache was 0640 for its group.
void keep_mode(const fs::path& from, const fs::path& to) {
  struct stat st {};
  if (::stat(from.c_str(), &st) != 0) return;
  ::chmod(to.c_str(), st.st_mode & 07777);
  [[maybe_unused]] const int ignored = ::chown(to.c_str(), st.st_uid, st.st_gid);
}

// Data, then the directory entry: a backup or a replaced cache that survives a power cut.
bool sync_path(const fs::path& p) {
  const int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  const bool ok = ::fsync(fd) == 0;
  ::close(fd);
  return ok;
}

// `cache backup FILE`: beside a running gateway (read-only: LMDB readers never block its
// writer), a compacted, consistent copy of the whole cache written to FILE.tmp, synced, then
// renamed to FILE. Mode 0600: query records say who looked up which address.
int backup(const config::Config& cfg, const fs::path& file) {
  const fs::path tmp = file.string() + ".tmp";
  cache::Store store(options(cfg, true));
  const cache::StoreStats stats = store.stats();
  std::error_code ec;
  fs::remove(tmp, ec);
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) {
    std::cerr << "hkp-gateway: cannot create " << tmp.string() << ": " << std::strerror(errno)
              << "\n";
    return 1;
  }
  const int rc = store.copy_to(fd);
  const bool synced = rc == 0 && ::fsync(fd) == 0;
  ::close(fd);
  if (rc != 0 || !synced) {
    std::cerr << "hkp-gateway: backing up " << cfg.cache.path << " failed: "
              << (rc ? std::error_code(rc, cache::lmdb_category()).message()
                     : std::string(std::strerror(errno)))
              << "\n";
    fs::remove(tmp, ec);
    return 1;
  }
  fs::rename(tmp, file, ec);
  if (ec) {
    std::cerr << "hkp-gateway: cannot rename " << tmp.string() << " to " << file.string() << ": "
              << ec.message() << "\n";
    fs::remove(tmp, ec);
    return 1;
  }
  sync_path(file.has_parent_path() ? file.parent_path() : fs::path("."));
  std::cout << "backed up " << cfg.cache.path << " to " << file.string() << ": " << stats.keys
            << " keys, " << stats.queries << " query records, " << stats.outbox
            << " waiting forwards, " << fs::file_size(file, ec) << " bytes\n";
  return 0;
}

// `cache restore FILE`: the backup is checked first, as a cache of its own (schema, tables,
// indexes: `verify`), then put in place of data.mdb while holding the cache's writer lock (no
// gateway may run), keeping the old file's mode and owner. A crash leaves one whole file.
int restore(const config::Config& cfg, const fs::path& file) {
  if (!fs::is_regular_file(file)) {
    std::cerr << "hkp-gateway: cannot read backup \"" << file.string() << "\"\n";
    return 1;
  }
  cache::Store live(options(cfg, false));  // the writer lock: refused while a gateway runs
  const fs::path dir = fs::path(cfg.cache.path) / "restore.tmp";
  std::error_code ec;
  fs::remove_all(dir, ec);
  fs::create_directory(dir, ec);
  fs::copy_file(file, dir / "data.mdb", ec);
  if (ec) {
    std::cerr << "hkp-gateway: cannot copy " << file.string() << ": " << ec.message() << "\n";
    fs::remove_all(dir, ec);
    return 1;
  }
  std::size_t keys = 0;
  try {
    cache::StoreOptions o = options(cfg, false);
    o.path = dir.string();
    cache::Store candidate(o);  // migrates an older schema, refuses a newer one
    if (const auto problems = candidate.verify(); !problems.empty()) {
      std::cerr << "hkp-gateway: " << file.string() << " is not a sound cache: " << problems.front()
                << (problems.size() > 1 ? " (and " + std::to_string(problems.size() - 1) + " more)"
                                        : std::string())
                << "; nothing restored\n";
      fs::remove_all(dir, ec);
      return 1;
    }
    keys = candidate.stats().keys;
  } catch (const cache::StoreError& e) {
    std::cerr << "hkp-gateway: " << file.string() << " is not a cache backup: " << e.what()
              << "; nothing restored\n";
    fs::remove_all(dir, ec);
    return 1;
  }
  const fs::path target = fs::path(cfg.cache.path) / "data.mdb";
  keep_mode(target, dir / "data.mdb");
  sync_path(dir / "data.mdb");
  fs::rename(dir / "data.mdb", target, ec);
  if (ec) {
    std::cerr << "hkp-gateway: cannot replace " << target.string() << ": " << ec.message() << "\n";
    fs::remove_all(dir, ec);
    return 1;
  }
  sync_path(cfg.cache.path);
  fs::remove_all(dir, ec);
  std::cout << "restored " << cfg.cache.path << " from " << file.string() << ": " << keys
            << " keys\n";
  return 0;
}

// A compacted copy written next to data.mdb, then renamed over it, all while holding the
// cache's writer lock (so no gateway is running): a crash leaves the old file whole.
int compact(const config::Config& cfg) {
  cache::Store store(options(cfg, false));
  const fs::path dir = fs::path(cfg.cache.path) / "compact.tmp";
  std::error_code ec;
  fs::remove_all(dir, ec);
  if (!fs::create_directory(dir, ec)) {
    std::cerr << "hkp-gateway: cannot create " << dir.string() << ": " << ec.message() << "\n";
    return 1;
  }
  const auto before = fs::file_size(fs::path(cfg.cache.path) / "data.mdb", ec);
  if (const int rc = store.copy_compacted(dir.string())) {
    std::cerr << "hkp-gateway: compacting " << cfg.cache.path << " failed: "
              << std::error_code(rc, cache::lmdb_category()).message() << "\n";
    fs::remove_all(dir, ec);
    return 1;
  }
  const auto after = fs::file_size(dir / "data.mdb", ec);
  keep_mode(fs::path(cfg.cache.path) / "data.mdb", dir / "data.mdb");
  fs::rename(dir / "data.mdb", fs::path(cfg.cache.path) / "data.mdb", ec);
  if (ec) {
    std::cerr << "hkp-gateway: cannot replace " << cfg.cache.path << "/data.mdb: " << ec.message() << "\n";
    fs::remove_all(dir, ec);
    return 1;
  }
  fs::remove_all(dir, ec);
  std::cout << "compacted " << cfg.cache.path << ": data.mdb " << before << " -> " << after << " bytes\n";
  return 0;
}

}  // namespace

int run_cache_command(const config::Config& cfg, const CacheCommand& command) {
  try {
    const std::string& verb = command.verb;
    const auto& files = command.files;
    if (verb == "stats") return stats(cfg);
    if (verb == "verify") return verify(cfg);
    if (verb == "export") return export_keys(cfg, files);
    if (verb == "import") return import_keys(cfg, files);
    if (verb == "purge") return purge(cfg, files);
    if (verb == "compact") return compact(cfg);
    if (verb == "backup" && files.size() == 1) return backup(cfg, files[0]);
    if (verb == "restore" && files.size() == 1) return restore(cfg, files[0]);
    std::cerr << "hkp-gateway: no cache command \"" << verb << "\" with " << files.size()
              << " operands\n";
    return 2;
  } catch (const cache::StoreError& e) {
    std::cerr << "hkp-gateway: " << e.what() << "\n";
    return 1;
  } catch (const std::filesystem::filesystem_error& e) {
    // "filesystem error: status: Permission denied [/var/lib/hkp-gateway]": the system's words
    // and the path; an unreadable cache directory is an operator's problem, not a crash.
    std::cerr << "hkp-gateway: cache \"" << cfg.cache.path << "\": " << e.what() << "\n";
    return 1;
  }
}

}  // namespace hkpgw::gateway
