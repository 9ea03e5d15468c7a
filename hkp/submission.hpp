// POST /pks/add bodies (SHAW section 4, and what real clients send: docs/clients.md).
// Pure parsing: which bytes are the submitted keys, and the options. Validation of the keys
// themselves is keyring.hpp's.
#pragma once

#include <string>
#include <string_view>

#include "hkp/problem.hpp"

namespace hkpgw::hkp {

struct Submission {
  std::string keytext;            // armored or binary OpenPGP data, decoded from the form
  bool machine_readable = false;  // options=mr: a colon-separated summary
};

// application/x-www-form-urlencoded (the HKP form, `keytext=`; decoded tolerantly: '+' is a
// space, %XX in either case, split on '&' and the first '=' only, as gpg, sq and GpgFrontend
// each encode differently), or a raw body with application/pgp-keys, application/pgp or
// application/octet-stream (parameters such as v2's ";armor=no" ignored), or multipart/form-data
// with a part named keytext (curl -F). 400 for a form without keytext or with an empty one, and
// for a multipart body without its boundary; 415 for other content types.
Result<Submission> parse_submission(std::string_view content_type, std::string_view body,
                                    std::string_view query);

}  // namespace hkpgw::hkp
