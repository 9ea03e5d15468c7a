// How each front words what the services came to (gateway/service/outcome.hpp). A front's format
// renders found keys and listings its own way; `render` does what every lookup answer shares
// (X-HKP-Cache, Age, Retry-After, the reuse ticket, the request's access record), so a new front
// or an HTML page is one more LookupFormat, and no service knows any wire format.
#pragma once

#include "gateway/net/http_message.hpp"
#include "gateway/service/outcome.hpp"
#include "hkp/lookup.hpp"

namespace hkpgw::gateway {

class LookupFormat {
 public:
  virtual ~LookupFormat() = default;
  // op=get: the keys.
  virtual HttpResponse keys(const hkp::LookupRequest& request, const LookupOutcome& o) const = 0;
  // op=index and vindex: the listing.
  virtual HttpResponse listing(const hkp::LookupRequest& request, const LookupOutcome& o) const = 0;
  // Not found, refused, unavailable: by default the problem's one line of text, its status.
  virtual HttpResponse problem(const hkp::LookupRequest& request, const LookupOutcome& o) const;
};

// HKP (/pks/lookup): armored keys; mr listings (options=mr), else SKS's HTML listing.
const LookupFormat& hkp_format();
// VKS (/vks/v1/by-*): armored keys named as Hagrid names its files (Content-Disposition).
const LookupFormat& vks_format();
// HKP v2 (/pks/v2/...): the binary bundle; listings as the draft's JSON.
const LookupFormat& v2_format();

// The answer to a lookup, worded by `format`; writes `http`'s access record.
HttpResponse render(const LookupFormat& format, const hkp::LookupRequest& request, LookupOutcome o,
                    const HttpRequest& http);

// A refusal as one line of text with its status (and Retry-After when it has one).
HttpResponse refusal_text(const Refusal& refused);

// Access-Control-Allow-Origin: * (the HKP draft asks it of keyservers, so a web page may query
// them), unless the answer set its own.
void allow_any_origin(HttpResponse& r);

}  // namespace hkpgw::gateway
