#include "hkp/problem.hpp"

namespace hkpgw {
namespace {

class GpgCategory final : public std::error_category {
 public:
  const char* name() const noexcept override { return "gpg-error"; }
  std::string message(int code) const override {
    return gpg_text(static_cast<gpg_err_code_t>(code));
  }
};

}  // namespace

const std::error_category& gpg_category() {
  static const GpgCategory category;
  return category;
}

std::error_code make_gpg_error(gpg_err_code_t code) {
  return {static_cast<int>(code), gpg_category()};
}

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
