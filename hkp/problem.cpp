#include "hkp/problem.hpp"

namespace hkpgw {
std::string gpg_text(gpg_err_code_t code) {
  char buf[256];
  gpg_strerror_r(gpg_error(code), buf, sizeof buf);
  return buf;
}

std::string Problem::message() const {
  std::string out = gpg_text(code);
  if (!detail.empty()) {
    out += ": ";
    out += detail;
  }
  return out;
}

void throw_exception_from_error(const Problem& p, const boost::source_location&) {
  throw ProblemError(p);
}

}  // namespace hkpgw
