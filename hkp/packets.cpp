#include "hkp/packets.hpp"

#include <cstdint>

namespace hkpgw::hkp {

std::optional<std::vector<Packet>> split_packets(std::string_view data) {
  std::vector<Packet> out;
  std::size_t at = 0;
  auto byte = [&](std::size_t i) { return static_cast<std::uint8_t>(data[i]); };
  while (at < data.size()) {
    const std::uint8_t first = byte(at);
    if (!(first & 0x80)) return std::nullopt;
    std::size_t header = 0, length = 0;
    int tag = 0;
    if (first & 0x40) {  // new format
      tag = first & 0x3F;
      if (at + 1 >= data.size()) return std::nullopt;
      const std::uint8_t l0 = byte(at + 1);
      if (l0 < 192) {
        header = 2;
        length = l0;
      } else if (l0 < 224) {
        if (at + 2 >= data.size()) return std::nullopt;
        header = 3;
        length = ((l0 - 192) << 8) + byte(at + 2) + 192;
      } else if (l0 == 255) {
        if (at + 5 >= data.size()) return std::nullopt;
        header = 6;
        length = (std::size_t(byte(at + 2)) << 24) | (std::size_t(byte(at + 3)) << 16) |
                 (std::size_t(byte(at + 4)) << 8) | byte(at + 5);
      } else {
        return std::nullopt;  // partial body length
      }
    } else {  // old format
      tag = (first >> 2) & 0x0F;
      switch (first & 3) {
        case 0:
          if (at + 1 >= data.size()) return std::nullopt;
          header = 2;
          length = byte(at + 1);
          break;
        case 1:
          if (at + 2 >= data.size()) return std::nullopt;
          header = 3;
          length = (std::size_t(byte(at + 1)) << 8) | byte(at + 2);
          break;
        case 2:
          if (at + 4 >= data.size()) return std::nullopt;
          header = 5;
          length = (std::size_t(byte(at + 1)) << 24) | (std::size_t(byte(at + 2)) << 16) |
                   (std::size_t(byte(at + 3)) << 8) | byte(at + 4);
          break;
        default:
          return std::nullopt;  // indeterminate length
      }
    }
    if (length > data.size() - at - header) return std::nullopt;
    out.push_back(Packet{tag, data.substr(at, header + length), data.substr(at + header, length)});
    at += header + length;
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
