#include "hkp/armor.hpp"

#include <algorithm>
#include <array>
#include <cstdint>
#include <optional>

#include "hkp/text.hpp"

namespace hkpgw::hkp {
namespace {

constexpr std::string_view kBeginPrefix = "-----BEGIN PGP ";
constexpr std::string_view kEndPrefix = "-----END PGP ";
constexpr std::string_view kDashes = "-----";

constexpr std::array<std::int8_t, 256> make_b64_table() {
  std::array<std::int8_t, 256> t{};
  for (auto& v : t) v = -1;
  constexpr std::string_view kB64 =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  for (std::size_t i = 0; i < kB64.size(); ++i) {
    t[static_cast<unsigned char>(kB64[i])] = static_cast<std::int8_t>(i);
  }
  return t;
}
constexpr auto kB64Value = make_b64_table();

Problem bad_armor(std::string detail) {
  return Problem{400, GPG_ERR_INV_ARMOR, std::move(detail)};
}

// Reads lines one at a time from `data` starting at `at`.
struct Lines {
  std::string_view data;
  std::size_t at = 0;
  bool next(std::string_view& line) {
    if (at >= data.size()) return false;
    const auto nl = data.find('\n', at);
    const auto end = nl == std::string_view::npos ? data.size() : nl;
    line = trim(data.substr(at, end - at));
    at = nl == std::string_view::npos ? data.size() : nl + 1;
    return true;
  }
};

// Appends the bytes of one line of base64 to `out`; `pad` counts '=' seen (only at the end).
bool decode_line(std::string_view line, std::string& out, std::uint32_t& acc, int& bits,
                 bool& ended) {
  for (const char ch : line) {
    if (ch == '=') {
      ended = true;
      continue;
    }
    const std::int8_t v = kB64Value[static_cast<unsigned char>(ch)];
    if (v < 0 || ended) return false;
    acc = (acc << 6) | static_cast<std::uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xFF));
    }
  }
  return true;
}

// The label of a BEGIN/END line ("PUBLIC KEY BLOCK"), or empty when the line is not one.
std::string_view label_of(std::string_view line, std::string_view prefix) {
  if (!line.starts_with(prefix) || !line.ends_with(kDashes) ||
      line.size() < prefix.size() + kDashes.size()) {
    return {};
  }
  return line.substr(prefix.size(), line.size() - prefix.size() - kDashes.size());
}

std::string printable(std::string_view s) {
  std::string out;
  for (const char c : s.substr(0, 40)) {
    out.push_back(c >= 0x20 && c < 0x7f ? c : '?');
  }
  return out;
}

}  // namespace

namespace {

// CRC-24 a byte at a time: the table holds the polynomial's effect of each top byte.
constexpr std::array<std::uint32_t, 256> kCrc24Table = [] {
  std::array<std::uint32_t, 256> t{};
  for (std::uint32_t b = 0; b < 256; ++b) {
    std::uint32_t crc = b << 16;
    for (int i = 0; i < 8; ++i) {
      crc <<= 1;
      if (crc & 0x1000000u) crc ^= 0x1864CFBu;
    }
    t[b] = crc & 0xFFFFFFu;
  }
  return t;
}();

}  // namespace

std::uint32_t crc24_update(std::uint32_t crc, std::string_view data) {
  crc &= 0xFFFFFFu;
  for (const unsigned char c : data) {
    crc = ((crc << 8) ^ kCrc24Table[((crc >> 16) ^ c) & 0xFF]) & 0xFFFFFFu;
  }
  return crc;
}

bool decode_base64_line(std::string_view line, std::string& out, std::uint32_t& acc, int& bits,
                        bool& ended) {
  return decode_line(line, out, acc, bits, ended);
}

std::string_view armor_label(std::string_view line, std::string_view prefix) {
  return label_of(line, prefix);
}

Result<Dearmored> dearmor(std::string_view data) {
  Dearmored out;
  std::size_t search_from = 0;
  std::size_t blocks = 0;
  while (true) {
    const auto begin = data.find(kBeginPrefix, search_from);
    if (begin == std::string_view::npos) break;
    // The BEGIN line must start a line (text before it on the same line is not armor).
    if (begin > 0 && data[begin - 1] != '\n') {
      search_from = begin + kBeginPrefix.size();
      continue;
    }
    ++blocks;
    Lines lines{data, begin};
    std::string_view line;
    lines.next(line);
    const std::string_view label = label_of(line, kBeginPrefix);
    if (label.empty()) return bad_armor("malformed armor header line \"" + printable(line) + "\"");
    const bool is_public = label == "PUBLIC KEY BLOCK";
    const bool is_private = label == "PRIVATE KEY BLOCK" || label == "SECRET KEY BLOCK";
    if (!is_public && !is_private) {
      return bad_armor("armor labelled \"PGP " + printable(label) +
                       "\" is not a key: send a PUBLIC KEY BLOCK (gpg --armor --export)");
    }
    out.private_block = out.private_block || is_private;

    // Armor headers ("Version: ...", "Comment: ...") up to the blank line. Some producers omit
    // both the headers and the blank line: a first line that is not a header starts the body.
    std::size_t body_at = lines.at;
    while (lines.next(line)) {
      if (line.empty()) {
        body_at = lines.at;
        break;
      }
      if (line.find(": ") == std::string_view::npos) break;  // body starts here
      body_at = lines.at;
    }
    lines.at = body_at;

    std::string binary;
    std::uint32_t acc = 0;
    int bits = 0;
    bool padded = false, ended = false;
    std::optional<std::string_view> crc_text;
    while (lines.next(line)) {
      if (line.empty()) continue;
      if (const auto end_label = label_of(line, kEndPrefix); !end_label.empty()) {
        if (end_label != label) {
          return bad_armor("armor block \"PGP " + printable(label) + "\" ends with \"PGP " +
                           printable(end_label) + "\"");
        }
        ended = true;
        break;
      }
      if (line.front() == '=' && line.size() == 5 && !crc_text) {
        crc_text = line.substr(1);
        continue;
      }
      if (crc_text) return bad_armor("armor has data after its checksum line");
      if (!decode_line(line, binary, acc, bits, padded)) {
        return bad_armor("armor holds characters outside base64 (\"" + printable(line) + "\")");
      }
    }
    if (!ended) return bad_armor("armor block \"PGP " + printable(label) + "\" has no END line");
    if (crc_text) {
      std::string crc_bytes;
      std::uint32_t cacc = 0;
      int cbits = 0;
      bool cpad = false;
      if (!decode_line(*crc_text, crc_bytes, cacc, cbits, cpad) || crc_bytes.size() != 3) {
        return bad_armor("armor checksum line is not base64 of 3 bytes");
      }
      const std::uint32_t want = (std::uint32_t(static_cast<unsigned char>(crc_bytes[0])) << 16) |
                                 (std::uint32_t(static_cast<unsigned char>(crc_bytes[1])) << 8) |
                                 std::uint32_t(static_cast<unsigned char>(crc_bytes[2]));
      if (crc24(binary) != want) {
        return bad_armor("armor checksum (CRC-24) does not match its data: the key was damaged "
                         "in transit");
      }
    }
    out.binary += binary;
    search_from = lines.at;
  }
  if (blocks == 0) {
    out.binary.assign(data);  // binary packets (or nothing OpenPGP at all: the parser says so)
  }
  return out;
}

namespace {

constexpr char kB64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
constexpr std::string_view kPublicBegin = "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\n";
constexpr std::string_view kPublicEnd = "-----END PGP PUBLIC KEY BLOCK-----\n";

void encode3(std::string& out, const unsigned char* p, std::size_t n) {
  const std::uint32_t v = (std::uint32_t(p[0]) << 16) | (n > 1 ? std::uint32_t(p[1]) << 8 : 0) |
                          (n > 2 ? std::uint32_t(p[2]) : 0);
  out.push_back(kB64[(v >> 18) & 63]);
  out.push_back(kB64[(v >> 12) & 63]);
  out.push_back(n > 1 ? kB64[(v >> 6) & 63] : '=');
  out.push_back(n > 2 ? kB64[v & 63] : '=');
}

}  // namespace

ArmorWriter::ArmorWriter(std::string& out, std::function<void(std::string&)> drain)
    : out_(out), drain_(std::move(drain)) {
  out_ += kPublicBegin;
}

void ArmorWriter::write(std::string_view packets) {
  crc_ = crc24_update(crc_, packets);
  const auto* p = reinterpret_cast<const unsigned char*>(packets.data());
  std::size_t n = packets.size();
  auto group = [&](const unsigned char* g) {
    encode3(out_, g, 3);
    if ((line_ += 4) == 64) {
      out_.push_back('\n');
      line_ = 0;
    }
  };
  while (carry_n_ > 0 && carry_n_ < 3 && n > 0) {  // complete the group left by the last call
    carry_[carry_n_++] = *p++;
    --n;
    if (carry_n_ == 3) {
      group(carry_);
      carry_n_ = 0;
    }
  }
  // The bulk: whole lines of 16 groups written straight into the buffer (push_back per
  // character was most of the cost of armoring a key on its first hit).
  while (n >= 3 && line_ != 0) {  // finish the line the last call left open
    group(p);
    p += 3;
    n -= 3;
  }
  const std::size_t lines = n / 48;
  if (lines > 0) {
    const std::size_t at = out_.size();
    out_.resize(at + lines * 65);
    char* o = out_.data() + at;
    for (std::size_t l = 0; l < lines; ++l, p += 48) {
      for (std::size_t g = 0; g < 48; g += 3) {
        const std::uint32_t v = (std::uint32_t(p[g]) << 16) | (std::uint32_t(p[g + 1]) << 8) | p[g + 2];
        *o++ = kB64[(v >> 18) & 63];
        *o++ = kB64[(v >> 12) & 63];
        *o++ = kB64[(v >> 6) & 63];
        *o++ = kB64[v & 63];
      }
      *o++ = '\n';
    }
    n -= lines * 48;
  }
  for (; n >= 3; p += 3, n -= 3) group(p);
  for (std::size_t i = 0; i < n; ++i) carry_[carry_n_++] = p[i];
  if (drain_ && out_.size() >= (64 << 10)) drain_(out_);
}

void ArmorWriter::finish() {
  if (carry_n_ > 0) {
    encode3(out_, carry_, carry_n_);
    line_ += 4;
    carry_n_ = 0;
  }
  if (line_ != 0) out_.push_back('\n');
  const std::uint32_t crc = crc_ & 0xFFFFFFu;
  const unsigned char c[3] = {static_cast<unsigned char>(crc >> 16),
                              static_cast<unsigned char>(crc >> 8), static_cast<unsigned char>(crc)};
  out_.push_back('=');
  encode3(out_, c, 3);
  out_.push_back('\n');
  out_ += kPublicEnd;
  if (drain_) drain_(out_);
}

std::string armor_public_keys(std::string_view packets) {
  const std::size_t b64_len = (packets.size() + 2) / 3 * 4;
  std::string out;
  out.reserve(kPublicBegin.size() + b64_len + b64_len / 64 + 8 + kPublicEnd.size());
  ArmorWriter w(out);
  w.write(packets);
  w.finish();
  return out;
}

}  // namespace hkpgw::hkp
