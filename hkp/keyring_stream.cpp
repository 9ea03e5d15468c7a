#include "hkp/keyring_stream.hpp"

#include <array>

#include "hkp/armor.hpp"
#include "hkp/packets.hpp"

namespace hkpgw::hkp {

namespace {

constexpr std::size_t kReadBlock = 1 << 20;
constexpr std::size_t kMaxLine = 1 << 20;

enum class Line { ok, end, too_long };

// One line without its '\n', read a byte at a time so a line is never held past `max` bytes
// (std::getline would read a gigabyte without a newline whole before we could check it).
Line read_line(std::istream& in, std::string& line, std::size_t max) {
  line.clear();
  std::streambuf* buf = in.rdbuf();
  while (true) {
    const int c = buf->sbumpc();
    if (c == std::char_traits<char>::eof()) return line.empty() ? Line::end : Line::ok;
    if (c == '\n') return Line::ok;
    if (line.size() == max) return Line::too_long;
    line.push_back(static_cast<char>(c));
  }
}

bool is_primary(int tag) { return tag == tag::public_key || tag == tag::secret_key; }

// Bytes a packet needs from the start of `data`, when its header is complete there; 0 when the
// header is not complete yet; npos when it can never frame (not a packet, partial length).
std::size_t packet_size(std::string_view data) {
  if (data.empty()) return 0;
  if (auto p = first_packet(data)) return p->whole.size();
  const auto b = [&](std::size_t i) { return static_cast<std::uint8_t>(data[i]); };
  const std::uint8_t first = b(0);
  if (!(first & 0x80)) return std::string_view::npos;
  std::size_t header = 0, length = 0;
  if (first & 0x40) {
    if (data.size() < 2) return 0;
    const std::uint8_t l0 = b(1);
    if (l0 < 192) return 2 + l0;
    if (l0 < 224) return data.size() < 3 ? 0 : 3 + ((l0 - 192) << 8) + b(2) + 192;
    if (l0 != 255) return std::string_view::npos;  // partial body length
    header = 6;
    if (data.size() < header) return 0;
    length = (std::size_t(b(2)) << 24) | (std::size_t(b(3)) << 16) | (std::size_t(b(4)) << 8) | b(5);
  } else {
    const int kind = first & 3;
    if (kind == 3) return std::string_view::npos;  // indeterminate length
    header = kind == 0 ? 2 : kind == 1 ? 3 : 5;
    if (data.size() < header) return 0;
    for (std::size_t i = 1; i < header; ++i) length = (length << 8) | b(i);
  }
  return header + length;
}

}  // namespace

KeyringStream::KeyringStream(std::istream& in, std::size_t keys_per_chunk)
    : in_(in), keys_per_chunk_(std::max<std::size_t>(1, keys_per_chunk)) {}

bool KeyringStream::fail(std::string message) {
  if (error_.empty()) error_ = std::move(message);
  eof_ = true;
  return false;
}

bool KeyringStream::fill() {
  if (eof_) return false;
  if (!started_) {  // armor or binary, decided by the first bytes as dearmor() does
    started_ = true;
    const int c = in_.peek();
    armored_ = c != EOF && !(static_cast<unsigned char>(c) & 0x80);
  }
  if (armored_) return fill_armor();
  std::array<char, 64 << 10> block;
  std::size_t got = 0;
  while (got < kReadBlock && in_) {
    in_.read(block.data(), block.size());
    const auto n = static_cast<std::size_t>(in_.gcount());
    pending_.append(block.data(), n);
    got += n;
  }
  if (got == 0) eof_ = true;
  return got > 0;
}

// One armor line at a time until a read block's worth of bytes is decoded, or the input ends.
bool KeyringStream::fill_armor() {
  const std::size_t before = pending_.size() - offset_;
  std::string line;
  std::string decoded;
  while (pending_.size() - offset_ - before < kReadBlock) {
    const Line got = read_line(in_, line, kMaxLine);
    if (got == Line::end) {
      if (in_block_) {
        return fail("armor block \"PGP " + label_ + "\" has no END line");
      }
      eof_ = true;
      break;
    }
    ++line_no_;
    if (got == Line::too_long) return fail("line " + std::to_string(line_no_) + " is over 1 MiB");
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (!in_block_) {  // text around blocks is ignored, as in a mail body
      const std::string_view label = armor_label(line, kArmorBegin);
      if (label.empty()) continue;
      if (label != "PUBLIC KEY BLOCK" && label != "PRIVATE KEY BLOCK" && label != "SECRET KEY BLOCK") {
        return fail("armor labelled \"PGP " + std::string(label).substr(0, 64) +
                    "\" is not a key (line " + std::to_string(line_no_) + ")");
      }
      private_block_ = private_block_ || label != "PUBLIC KEY BLOCK";
      label_ = std::string(label);
      in_block_ = true;
      in_body_ = false;
      padded_ = false;
      crc_text_.clear();
      acc_ = 0;
      bits_ = 0;
      crc_ = kCrc24Init;
      continue;
    }
    if (!in_body_) {  // headers up to the blank line; a line without ": " starts the body
      if (line.empty()) {
        in_body_ = true;
        continue;
      }
      if (line.find(": ") != std::string::npos) continue;
      in_body_ = true;
    }
    if (line.empty()) continue;
    if (const auto end = armor_label(line, kArmorEnd); !end.empty()) {
      if (end != label_) {
        return fail("armor block \"PGP " + label_ + "\" ends with \"PGP " +
                    std::string(end).substr(0, 64) + "\"");
      }
      if (!crc_text_.empty()) {
        std::string bytes;
        std::uint32_t a = 0;
        int b = 0;
        bool p = false;
        if (!decode_base64_line(crc_text_, bytes, a, b, p) || bytes.size() != 3) {
          return fail("armor checksum line is not base64 of 3 bytes");
        }
        const std::uint32_t want = (std::uint32_t(static_cast<unsigned char>(bytes[0])) << 16) |
                                   (std::uint32_t(static_cast<unsigned char>(bytes[1])) << 8) |
                                   std::uint32_t(static_cast<unsigned char>(bytes[2]));
        if ((crc_ & 0xFFFFFFu) != want) {
          return fail("armor checksum (CRC-24) of block \"PGP " + label_ +
                      "\" does not match its data (ending at line " + std::to_string(line_no_) + ")");
        }
      }
      in_block_ = false;
      continue;
    }
    if (line.front() == '=' && line.size() == 5 && crc_text_.empty()) {
      crc_text_ = line.substr(1);
      continue;
    }
    if (!crc_text_.empty()) return fail("armor has data after its checksum line");
    decoded.clear();
    if (!decode_base64_line(line, decoded, acc_, bits_, padded_)) {
      return fail("armor holds characters outside base64 (line " + std::to_string(line_no_) + ")");
    }
    crc_ = crc24_update(crc_, decoded);
    pending_ += decoded;
  }
  return pending_.size() - offset_ > before;
}

std::optional<std::string> KeyringStream::next() {
  std::string chunk;
  std::size_t keys = 0;
  while (true) {
    const std::string_view rest = std::string_view(pending_).substr(offset_);
    const std::size_t size = packet_size(rest);
    if (size == std::string_view::npos) {
      fail("not an OpenPGP packet sequence (at a packet that cannot frame)");
      return std::nullopt;
    }
    if (size > kMaxPacket) {
      fail("a packet of " + std::to_string(size) + " bytes (over 16 MiB)");
      return std::nullopt;
    }
    if (size == 0 || size > rest.size()) {  // need more input
      if (offset_ > 0) {  // keep what is pending small: drop what was handed out
        pending_.erase(0, offset_);
        offset_ = 0;
      }
      if (!fill()) {
        if (!error_.empty()) return std::nullopt;
        if (offset_ < pending_.size()) {
          fail("the input ends inside a packet (truncated)");
          return std::nullopt;
        }
        if (chunk.empty()) return std::nullopt;
        return chunk;
      }
      continue;
    }
    const int tag = first_packet(rest)->tag;
    if (is_primary(tag)) {
      if (keys == keys_per_chunk_) return chunk;  // this key starts the next chunk
      ++keys;
    }
    chunk.append(rest.data(), size);
    offset_ += size;
  }
}

}  // namespace hkpgw::hkp
