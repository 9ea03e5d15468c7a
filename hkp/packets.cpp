#include "hkp/packets.hpp"

#include <cstdint>

namespace hkpgw::hkp {

std::optional<Packet> first_packet(std::string_view data) {
  auto byte = [&](std::size_t i) { return static_cast<std::uint8_t>(data[i]); };
  if (data.empty()) return std::nullopt;
  const std::uint8_t first = byte(0);
  if (!(first & 0x80)) return std::nullopt;
  std::size_t header = 0, length = 0;
  int tag = 0;
  if (first & 0x40) {  // new format
    tag = first & 0x3F;
    if (data.size() < 2) return std::nullopt;
    const std::uint8_t l0 = byte(1);
    if (l0 < 192) {
      header = 2;
      length = l0;
    } else if (l0 < 224) {
      if (data.size() < 3) return std::nullopt;
      header = 3;
      length = ((l0 - 192) << 8) + byte(2) + 192;
    } else if (l0 == 255) {
      if (data.size() < 6) return std::nullopt;
      header = 6;
      length = (std::size_t(byte(2)) << 24) | (std::size_t(byte(3)) << 16) |
               (std::size_t(byte(4)) << 8) | byte(5);
    } else {
      return std::nullopt;  // partial body length
    }
  } else {  // old format
    tag = (first >> 2) & 0x0F;
    switch (first & 3) {
      case 0:
        if (data.size() < 2) return std::nullopt;
        header = 2;
        length = byte(1);
        break;
      case 1:
        if (data.size() < 3) return std::nullopt;
        header = 3;
        length = (std::size_t(byte(1)) << 8) | byte(2);
        break;
      case 2:
        if (data.size() < 5) return std::nullopt;
        header = 5;
        length = (std::size_t(byte(1)) << 24) | (std::size_t(byte(2)) << 16) |
                 (std::size_t(byte(3)) << 8) | byte(4);
        break;
      default:
        return std::nullopt;  // indeterminate length
    }
  }
  if (length > data.size() - header) return std::nullopt;
  return Packet{tag, data.substr(0, header + length), data.substr(header, length)};
}

std::optional<std::vector<Packet>> split_packets(std::string_view data) {
  std::vector<Packet> out;
  while (!data.empty()) {
    auto p = first_packet(data);
    if (!p) return std::nullopt;
    data.remove_prefix(p->whole.size());
    out.push_back(*p);
  }
  return out;
}

std::string make_packet(int tag, std::string_view body) {
  std::string out;
  out.push_back(static_cast<char>(0xC0 | (tag & 0x3F)));
  const std::size_t n = body.size();
  if (n < 192) {
    out.push_back(static_cast<char>(n));
  } else if (n < 8384) {
    out.push_back(static_cast<char>(((n - 192) >> 8) + 192));
    out.push_back(static_cast<char>((n - 192) & 0xFF));
  } else {
    out.push_back(static_cast<char>(0xFF));
    for (int shift : {24, 16, 8, 0}) out.push_back(static_cast<char>((n >> shift) & 0xFF));
  }
  out += body;
  return out;
}

}  // namespace hkpgw::hkp
