#include "cache/blocklist.hpp"

#include <algorithm>
#include <fstream>
#include <stdexcept>

namespace hkpgw::cache {

namespace {

bool by_bytes(const Fingerprint& a, const Fingerprint& b) { return a.bytes() < b.bytes(); }

}  // namespace

Blocklist Blocklist::load(const std::string& path) {
  Blocklist out;
  if (path.empty()) return out;
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cache.blocklist: cannot read \"" + path + "\"");
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
                               ": not a fingerprint (40 hex digits): \"" + line.substr(0, 80) +
                               "\"");
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
