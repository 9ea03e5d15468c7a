// The project's error vocabulary: libgpg-error codes (as dirmngr reports them), and Problem,
// the value every refusal of client or upstream input is carried as.
#pragma once

#include <gpg-error.h>

#include <boost/system/result.hpp>
#include <ostream>
#include <string>
#include <string_view>
#include <system_error>

namespace hkpgw {

// gpg_strerror's text for a code (thread-safe).
std::string gpg_text(gpg_err_code_t code);

// A request or a piece of data we refuse: the HTTP status a client gets, the gpg-error code that
// classifies it, and one line of detail. message() is what the client reads:
// "<gpg_strerror text>: <detail>".
struct Problem {
  unsigned status = 400;
  gpg_err_code_t code = GPG_ERR_INV_REQUEST;
  std::string detail;

  std::string message() const;
};

inline std::ostream& operator<<(std::ostream& os, const Problem& p) {
  return os << p.status << " " << p.message();
}

// Result of parsing untrusted input: a value or the Problem to answer with. Never throws on the
// data path; .value() on a Problem throws ProblemError (a programming error by then).
template <class T>
using Result = boost::system::result<T, Problem>;

struct ProblemError : std::runtime_error {
  explicit ProblemError(const Problem& p) : std::runtime_error(p.message()) {}
};

[[noreturn]] void throw_exception_from_error(const Problem& p, const boost::source_location&);

inline Problem problem(unsigned status, gpg_err_code_t code, std::string detail) {
  return Problem{status, code, std::move(detail)};
}

}  // namespace hkpgw
