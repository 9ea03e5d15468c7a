// POST /pks/add bodies: the first byte picks the content type, the rest is the body (a form, a
// multipart form, raw key data, or a VKS upload's JSON), as any client may send it.
#include <cstdint>
#include <string_view>

#include "hkp/submission.hpp"
#include "hkp/vks.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  static constexpr std::string_view kTypes[] = {
      "application/x-www-form-urlencoded", "application/pgp-keys",
      "multipart/form-data; boundary=b", "application/x-www-form-urlencoded; charset=utf-8",
      "multipart/form-data; boundary=\"b\""};
  const std::string_view body(reinterpret_cast<const char*>(data + 1), size - 1);
  if (data[0] % 6 == 5) {
    (void)hkpgw::hkp::parse_vks_upload(body);
    (void)hkpgw::hkp::parse_vks_verify(body);
    return 0;
  }
  (void)hkpgw::hkp::parse_submission(kTypes[data[0] % 5], body, "options=mr");
  return 0;
}
