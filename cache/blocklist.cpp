#include "cache/blocklist.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace hkpgw::cache {

namespace {

bool by_bytes(const Fingerprint& a, const Fingerprint& b) { return a.bytes() < b.bytes(); }

}  // namespace

namespace {

bool same_file(const struct stat& a, const struct stat& b) {
  return a.st_ino == b.st_ino && a.st_size == b.st_size && a.st_mtim.tv_sec == b.st_mtim.tv_sec &&
         a.st_mtim.tv_nsec == b.st_mtim.tv_nsec;
}

std::chrono::nanoseconds since_modified(const struct stat& st) {
  const auto modified = std::chrono::system_clock::time_point(
      std::chrono::duration_cast<std::chrono::system_clock::duration>(
          std::chrono::seconds(st.st_mtim.tv_sec) + std::chrono::nanoseconds(st.st_mtim.tv_nsec)));
  return std::chrono::system_clock::now() - modified;
}

// The file's bytes once it is quiet: unmodified for Blocklist::kQuiet (by its time, or, for a
// time this clock has not reached yet, by not changing while we wait that long), and the same
// before and after the read. A list rewritten in place (truncated, then written) and read in
// between loaded as a partial list, and a key blocked further down was accepted.
std::string read_quietly(const std::string& path) {
  const auto deadline = std::chrono::steady_clock::now() + Blocklist::kMaxWait;
  std::optional<struct stat> waited;  // the file as it was before the last wait
  while (true) {
    struct stat before {}, after {};
    if (::stat(path.c_str(), &before) != 0) {
      throw std::runtime_error("cache.blocklist: cannot read \"" + path + "\"");
    }
    const bool quiet =
        since_modified(before) >= Blocklist::kQuiet || (waited && same_file(*waited, before));
    if (!quiet) {
      if (std::chrono::steady_clock::now() + Blocklist::kQuiet > deadline) break;
      waited = before;
      std::this_thread::sleep_for(Blocklist::kQuiet);
      continue;
    }
    waited.reset();
    std::ifstream in(path, std::ios::binary);
    if (!in) throw std::runtime_error("cache.blocklist: cannot read \"" + path + "\"");
    std::string bytes{std::istreambuf_iterator<char>(in), {}};
    if (::stat(path.c_str(), &after) == 0 && same_file(before, after) &&
        bytes.size() == static_cast<std::size_t>(after.st_size)) {
      return bytes;
    }
    if (std::chrono::steady_clock::now() > deadline) break;
  }
  throw std::runtime_error("cache.blocklist: \"" + path + "\" kept changing for " +
                           std::to_string(Blocklist::kMaxWait.count()) +
                           " s while it was read; write the new list beside it and rename it "
                           "into place");
}

}  // namespace

Blocklist Blocklist::load(const std::string& path) {
  Blocklist out;
  if (path.empty()) return out;
  std::istringstream in(read_quietly(path));
  std::size_t number = 0;
  for (std::string line; std::getline(in, line);) {
    ++number;
    line = line.substr(0, line.find('#'));
    std::string hex;
    for (const char c : line) {
      if (c != ' ' && c != '\t' && c != '\r') hex += c;
    }
    if (hex.empty()) continue;
    const auto f = Fingerprint::from_hex(hex);
    if (!f) {
      throw std::runtime_error(path + ":" + std::to_string(number) +
                               ": not a fingerprint (40 hex digits for v4, 64 for v6): \"" +
                               line.substr(0, 80) + "\"");
    }
    if (out.sorted_.size() == kMaxEntries) {
      throw std::runtime_error(path + ": more than " + std::to_string(kMaxEntries) + " entries");
    }
    out.sorted_.push_back(*f);
  }
  std::sort(out.sorted_.begin(), out.sorted_.end(), by_bytes);
  out.sorted_.erase(std::unique(out.sorted_.begin(), out.sorted_.end()), out.sorted_.end());
  return out;
}

bool Blocklist::contains(const Fingerprint& f) const {
  return std::binary_search(sorted_.begin(), sorted_.end(), f, by_bytes);
}

bool Blocklist::contains_hex(std::string_view hex) const {
  if (sorted_.empty()) return false;
  const auto f = Fingerprint::from_hex(hex);
  return f && contains(*f);
}

}  // namespace hkpgw::cache
