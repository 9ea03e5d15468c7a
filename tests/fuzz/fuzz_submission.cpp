// POST /pks/add bodies: the first byte picks the content type, the rest is the body (a form, or
// raw key data), as any client may send it.
#include <cstdint>
#include <string_view>

#include "hkp/submission.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  static constexpr std::string_view kTypes[] = {
      "application/x-www-form-urlencoded", "application/pgp-keys", "multipart/form-data",
      "application/x-www-form-urlencoded; charset=utf-8"};
  const std::string_view type = kTypes[data[0] % 4];
  const std::string_view body(reinterpret_cast<const char*>(data + 1), size - 1);
  (void)hkpgw::hkp::parse_submission(type, body, "options=mr");
  return 0;
}
