// Which per-client budget a request spends ([limits], gateway/http/rate_limit.hpp): a key lookup
// (by fingerprint or key ID, on any front), a search (by address or text: what harvesting
// addresses needs), a submission, or none (the home page, stats, OPTIONS, errors of shape).
// Decided from the method and target alone, before any parsing, so it costs a scan of the
// target; it allocates only to decode a parameter name that is escaped (read as the lookup
// parser reads it, so no spelling of a name spends another budget). Pure.
#pragma once

#include <string_view>

namespace hkpgw::hkp {

enum class Budget { none, key_lookup, search, submission };
const char* budget_name(Budget b);  // "key_lookups", "searches", "submissions", "none"

Budget budget_of(std::string_view method, std::string_view path, std::string_view query);

}  // namespace hkpgw::hkp
