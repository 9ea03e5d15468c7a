// Parsing of HKP requests (draft-shaw-openpgp-hkp-00 section 3): the query string of
// /pks/lookup into a typed LookupRequest, form bodies, and the search normalisation rules real
// clients need (docs/clients.md). Pure functions: no I/O, no clock.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "hkp/problem.hpp"

namespace hkpgw::hkp {

enum class Op { get, index, vindex, stats };

enum class SearchKind {
  fingerprint,  // 40 hex (v4) or 64 (v6): value is upper-case hex without 0x
  long_keyid,   // 16 hex
  short_keyid,  // 8 hex (forgeable; policy decides)
  email,        // value is the lower-cased addr-spec
  text,         // value is the trimmed text with runs of spaces collapsed
};

struct Search {
  SearchKind kind = SearchKind::text;
  std::string value;

  bool is_key_id() const {
    return kind == SearchKind::fingerprint || kind == SearchKind::long_keyid ||
           kind == SearchKind::short_keyid;
  }
  // "0x"-prefixed upper hex for ids, the value otherwise: what we send upstream.
  std::string upstream_form() const;
  friend bool operator==(const Search&, const Search&) = default;
};

struct LookupRequest {
  Op op = Op::get;
  Search search;             // empty value for op=stats
  bool machine_readable = false;  // options=mr
  bool no_modify = false;         // options=nm (accepted, has no effect on lookups)
  bool v2 = false;  // HKP v2 (hkp/v2.hpp): keys answered binary, listings as JSON
};

const char* op_name(Op op);
const char* kind_name(SearchKind kind);

inline std::ostream& operator<<(std::ostream& os, const Search& s) {
  return os << kind_name(s.kind) << ":" << s.value;
}
inline std::ostream& operator<<(std::ostream& os, const LookupRequest& r) {
  return os << op_name(r.op) << " " << r.search << (r.machine_readable ? " mr" : "");
}

// Decodes %XX (either case); '+' becomes a space only when plus_is_space is set. Malformed
// escapes are kept literally (tolerant, like every keyserver).
std::string percent_decode(std::string_view in, bool plus_is_space);

// Percent-encodes everything but [A-Za-z0-9-._~] (what we send upstream).
std::string percent_encode(std::string_view in);

// Splits "a=1&b=2" on '&' and on the first '=' only (sq leaves '=' raw in armor), without
// decoding. Empty segments are skipped.
std::vector<std::pair<std::string_view, std::string_view>> split_query(std::string_view query);

// Form body (application/x-www-form-urlencoded) field, decoded with '+' as space.
std::optional<std::string> form_field(std::string_view body, std::string_view name);

// Normalises one search string. Errors: 400 for malformed hex and empty input, 501 for forms we
// do not support (v3 and v6 fingerprints).
Result<Search> parse_search(std::string_view raw_encoded);

// HKP options (draft section 3.2.1): comma separated, case-insensitive, spaces around names
// ignored. True when `list` (already percent-decoded) holds `name` (lower case). Lookups and
// submissions read options through this one function.
bool has_option(std::string_view list, std::string_view name);

// Parses the query string of /pks/lookup (without the leading '?'). Errors: 400 for a missing op or
// search, 501 for an unknown or x- op, and parse_search's errors.
Result<LookupRequest> parse_lookup(std::string_view query);

// The addr-spec inside a user ID or a search ("Name <a@b>", "<a@b>", "a@b"), lower-cased, or
// nothing when there is no plausible address.
std::optional<std::string> extract_email(std::string_view text);

// Lower-cases ASCII letters only (addresses and text queries compare this way).
std::string ascii_lower(std::string_view s);

}  // namespace hkpgw::hkp
