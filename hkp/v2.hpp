// HKP v2 (draft-ietf-openpgp-hkp, the successor of draft-gallagher-openpgp-hkp; docs/contract.md
// lists what is served): lookups by versioned fingerprint, key ID and identity as path
// components, JSON listings, feature detection per category. Parsed into the same LookupRequest
// the other fronts use, with `v2` set so the answer is binary (or JSON). Pure functions.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "hkp/lookup.hpp"
#include "hkp/problem.hpp"

namespace hkpgw::hkp {

inline constexpr std::string_view kV2Prefix = "/pks/v2/";
// The media type of v2 key answers and submissions: the binary bundle.
inline constexpr std::string_view kV2KeysType = "application/pgp-keys;armor=no";

// GET (or HEAD) /pks/v2/certs/by-vfingerprint/04<40 hex> (also Hockeypuck's 4/<40 hex>),
// /certs/by-keyid/<16 hex>, /certs/by-identity/<address> and /index/<identity>. Hex in either
// case, never with 0x. Errors: 403 for a category without its identifier; 404 for an identifier
// of the wrong shape (no key can have it; the text says what the shape is); 501 for a category
// not served (canonical, prefixlog, unknown ones), for v5 and v6 fingerprints, and for identities
// that are no address (user ID text).
Result<LookupRequest> parse_v2_lookup(std::string_view path);

// Feature detection: the methods a category (a path under /pks/v2/, with or without its
// identifier) takes, "" when it is not served (501).
std::string_view v2_allowed_methods(std::string_view path);

// A prefix log (GET /pks/v2/prefixlog/<YYYY-MM-DD>, as Hockeypuck serves it): one hex
// fingerprint prefix per line (CRLF or LF) of each certificate that changed that day. The
// prefixes, lower case, sorted and unique; lines that are not 4 to 64 hex digits are skipped,
// and at most `max_prefixes` are read (the rest of the body is ignored). Never throws.
std::vector<std::string> parse_prefix_log(std::string_view body, std::size_t max_prefixes);

}  // namespace hkpgw::hkp
