// Cache records as read back from LMDB (a damaged or foreign file): decoding never crashes, and a
// query record that decodes encodes back to the same bytes.
#include <cstdint>
#include <string_view>

#include "cache/record.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  if (auto v = hkpgw::cache::decode_key_record(bytes)) (void)hkpgw::cache::decode_key_info(v->info_bytes);
  (void)hkpgw::cache::decode_key_info(bytes);
  if (auto q = hkpgw::cache::decode_query_record(bytes)) {
    auto again = hkpgw::cache::decode_query_record(hkpgw::cache::encode_query_record(*q));
    if (!again || !(*again == *q)) __builtin_trap();
  }
  return 0;
}
