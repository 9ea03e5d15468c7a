// Which per-client budget a request spends ([limits], gateway/http/rate_limit.hpp): a key lookup
// (by fingerprint or key ID, on any front), a search (by address or text: what harvesting
// addresses needs), a submission, or none (the home page, stats, OPTIONS, errors of shape).
// Each route names its budget (gateway/http/routes.cpp); those of the lookup routes depend on
// what is asked, and are read here from the target alone, before any parsing, at the cost of a
// scan; allocating only to decode a parameter name that is escaped (read as the lookup parser
// reads it, so no spelling of a name spends another budget). Pure.
#pragma once

#include <string_view>

namespace hkpgw::hkp {

enum class Budget { none, key_lookup, search, submission };
const char* budget_name(Budget b);  // "key_lookups", "searches", "submissions", "none"

// GET /pks/lookup?QUERY: none for stats and for a query without op or search.
Budget lookup_budget(std::string_view query);
// GET /vks/v1/<rest>: by-email is a search, the other by-* key lookups.
Budget vks_budget(std::string_view rest);
// GET /pks/v2/<rest>: by-identity and index by anything but a key ID are searches.
Budget v2_budget(std::string_view rest);

}  // namespace hkpgw::hkp
