#include "hkp/text.hpp"

#include <array>
#include <cstdio>

namespace hkpgw::hkp {

namespace {
std::string hex_with(const char* digits, std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size() * 2);
  for (const unsigned char c : bytes) {
    out.push_back(digits[c >> 4]);
    out.push_back(digits[c & 15]);
  }
  return out;
}
}  // namespace

std::string hex_upper(std::string_view bytes) { return hex_with(kHexUpper, bytes); }
std::string hex_lower(std::string_view bytes) { return hex_with(kHexLower, bytes); }

std::string unhex(std::string_view hex) {
  auto digit = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  if (hex.size() % 2) return {};
  std::string out;
  out.reserve(hex.size() / 2);
  for (std::size_t i = 0; i < hex.size(); i += 2) {
    const int hi = digit(hex[i]), lo = digit(hex[i + 1]);
    if (hi < 0 || lo < 0) return {};
    out.push_back(static_cast<char>(hi << 4 | lo));
  }
  return out;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

std::size_t utf8_sequence(std::string_view s) {
  const auto b = [&](std::size_t i) { return static_cast<unsigned char>(s[i]); };
  const unsigned char c = b(0);
  std::size_t n = 0;
  unsigned char lo = 0x80, hi = 0xBF;  // bounds of the second byte
  if (c >= 0xC2 && c <= 0xDF) {
    n = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    n = 3;
    if (c == 0xE0) lo = 0xA0;
    if (c == 0xED) hi = 0x9F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    n = 4;
    if (c == 0xF0) lo = 0x90;
    if (c == 0xF4) hi = 0x8F;
  } else {
    return 0;
  }
  if (s.size() < n || b(1) < lo || b(1) > hi) return 0;
  for (std::size_t i = 2; i < n; ++i) {
    if (b(i) < 0x80 || b(i) > 0xBF) return 0;
  }
  return n;
}

namespace {

// ASCII bytes that are written escaped: controls, DEL, the quote and the backslash.
constexpr auto kEscapedAscii = [] {
  std::array<bool, 128> t{};
  for (int c = 0; c < 128; ++c) t[c] = c < 0x20 || c == 0x7f || c == '"' || c == '\\';
  return t;
}();
// Code points written as \uXXXX although they are valid UTF-8: C1 controls (a terminal may take
// U+009B as an escape), and the format characters that reorder text or break a line on screen
// (a user ID with U+202E shows a different address than it holds).
bool escaped_code_point(char32_t cp) {
  return (cp >= 0x80 && cp <= 0x9f) || cp == 0x61c || cp == 0x200e || cp == 0x200f ||
         (cp >= 0x2028 && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069);
}

char32_t decode_utf8(std::string_view seq) {  // a sequence utf8_sequence accepted
  const auto b = [&](std::size_t i) {
    return static_cast<char32_t>(static_cast<unsigned char>(seq[i]));
  };
  switch (seq.size()) {
    case 2: return (b(0) & 0x1f) << 6 | (b(1) & 0x3f);
    case 3: return (b(0) & 0x0f) << 12 | (b(1) & 0x3f) << 6 | (b(2) & 0x3f);
    default: return (b(0) & 0x07) << 18 | (b(1) & 0x3f) << 12 | (b(2) & 0x3f) << 6 | (b(3) & 0x3f);
  }
}

void append_u(std::string& out, char32_t cp) {  // a code point of the BMP as \uXXXX
  out += "\\u";
  for (int shift = 12; shift >= 0; shift -= 4) out.push_back(kHexLower[(cp >> shift) & 15]);
}

}  // namespace

void append_json_escaped(std::string& out, std::string_view v) {
  std::size_t run = 0;  // start of the bytes that go out as they are, appended in one piece
  for (std::size_t i = 0; i < v.size();) {
    const auto c = static_cast<unsigned char>(v[i]);
    if (c < 0x80) {
      if (!kEscapedAscii[c]) {
        ++i;
        continue;
      }
      out.append(v.data() + run, i - run);
      switch (c) {
        case '"': out += "\\\""; break;
        case '\\': out += "\\\\"; break;
        case '\n': out += "\\n"; break;
        case '\r': out += "\\r"; break;
        case '\t': out += "\\t"; break;
        default: append_u(out, c);
      }
      run = ++i;
      continue;
    }
    const std::size_t n = utf8_sequence(v.substr(i));
    if (n == 0 || escaped_code_point(decode_utf8(v.substr(i, n)))) {
      out.append(v.data() + run, i - run);
      if (n == 0) {
        out += "\\ufffd";  // not UTF-8: one replacement character per byte
        i += 1;
      } else {
        append_u(out, decode_utf8(v.substr(i, n)));
        i += n;
      }
      run = i;
      continue;
    }
    i += n;
  }
  out.append(v.data() + run, v.size() - run);
}

std::string valid_utf8(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  std::size_t run = 0;  // start of the bytes kept as they are
  for (std::size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    const std::size_t n = c < 0x80 ? 1 : utf8_sequence(s.substr(i));
    if (n > 0) {
      i += n;
      continue;
    }
    out.append(s.substr(run, i - run));
    out += "\xef\xbf\xbd";  // U+FFFD for the byte that is not UTF-8
    run = ++i;
  }
  out.append(s.substr(run));
  return out;
}

std::string displayable(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  const auto marker = [&out](char32_t cp) {
    char text[16];
    std::snprintf(text, sizeof text, "[U+%04X]", static_cast<unsigned>(cp));
    out += text;
  };
  for (std::size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      if (c < 0x20 || c == 0x7f) {
        marker(c);
      } else {
        out.push_back(static_cast<char>(c));
      }
      ++i;
      continue;
    }
    const std::size_t n = utf8_sequence(s.substr(i));
    if (n == 0) {
      out += "\xef\xbf\xbd";  // U+FFFD for a byte that is not UTF-8
      ++i;
      continue;
    }
    const char32_t cp = decode_utf8(s.substr(i, n));
    if (escaped_code_point(cp)) {
      marker(cp);
    } else {
      out.append(s.substr(i, n));
    }
    i += n;
  }
  return out;
}

std::string json_string(std::string_view s) {
  std::string out;
  out.reserve(s.size() + 2);
  out.push_back('"');
  append_json_escaped(out, s);
  out.push_back('"');
  return out;
}

}  // namespace hkpgw::hkp
