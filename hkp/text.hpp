// Small text helpers the parsers and formatters share: hex digits, trimming, JSON strings. Pure.
#pragma once

#include <string>
#include <string_view>

namespace hkpgw::hkp {

inline constexpr char kHexUpper[] = "0123456789ABCDEF";
inline constexpr char kHexLower[] = "0123456789abcdef";

// Two upper-case (lower-case) hex digits per byte.
std::string hex_upper(std::string_view bytes);
std::string hex_lower(std::string_view bytes);

// The bytes of an even number of hex digits (either case); "" when `hex` is anything else.
std::string unhex(std::string_view hex);

// ASCII only, without the C library's per-character locale call (hex digits on the hot path).
inline char upper_ascii(char c) { return c >= 'a' && c <= 'z' ? static_cast<char>(c - 32) : c; }
inline std::string upper_ascii(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = upper_ascii(c);
  return out;
}

inline bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

// Without spaces, tabs, CR and LF at either end.
std::string_view trim(std::string_view s);

// The length of the well-formed UTF-8 sequence at the start of `s` (RFC 3629: no overlong forms,
// no surrogates, nothing past U+10FFFF), or 0. `s` must not be empty.
std::size_t utf8_sequence(std::string_view s);

// `v` escaped as the inside of a JSON string (and of a quoted logfmt value, which takes the same
// escapes): \" \\ \n \r \t, and \uXXXX for other controls, DEL, C1 controls and the format
// characters that reorder or break text on screen (a user ID with U+202E shows an address it does
// not hold); each byte that is not UTF-8 (a user ID may hold anything) becomes \ufffd, so the
// result always parses. Other UTF-8 stays as it is.
void append_json_escaped(std::string& out, std::string_view v);
// `s` with each byte that is not UTF-8 replaced by U+FFFD; well-formed UTF-8 as it is.
std::string valid_utf8(std::string_view s);
// `s` as text to show a person (the web pages): UTF-8 kept, each byte that is not UTF-8 as
// U+FFFD, and each control, C1 control or format character that reorders or hides text (the
// ones append_json_escaped escapes) written out as "[U+202E]", so a user ID cannot show an
// address it does not hold. Markup is the template's to escape.
std::string displayable(std::string_view s);
// `s` as a quoted JSON string, escaped as above.
std::string json_string(std::string_view s);

}  // namespace hkpgw::hkp
