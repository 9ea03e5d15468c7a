// Inside cache/: the one byte codec of every table. Integers are little-endian, fixed width,
// whatever the host (records, slots, the outbox). The one exception is where LMDB's key order
// must be numeric order: record numbers are big-endian, so the records table iterates oldest
// first and a new record is an append.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace hkpgw::cache::codec {

inline void put_le(std::string& out, std::uint64_t v, int width) {
  for (int i = 0; i < width; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
}
// `in` must hold at least `width` bytes.
inline std::uint64_t get_le(std::string_view in, int width) {
  std::uint64_t v = 0;
  for (int i = 0; i < width; ++i) v |= static_cast<std::uint64_t>(static_cast<unsigned char>(in[i])) << (8 * i);
  return v;
}
inline void put_be64(std::string& out, std::uint64_t v) {
  for (int i = 7; i >= 0; --i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
}
inline std::uint64_t get_be64(std::string_view in) {
  std::uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | static_cast<unsigned char>(in[i]);
  return v;
}

}  // namespace hkpgw::cache::codec
