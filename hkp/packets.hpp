// A minimal OpenPGP packet framer (RFC 4880 section 4.2): splits binary data into packets by their
// headers without interpreting the bodies. The key cleaner uses it to enforce per-packet size
// limits on what RNP exported; tests use it to build keys packet by packet (forged user IDs,
// flooded keys).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace hkpgw::hkp {

namespace tag {
inline constexpr int signature = 2;
inline constexpr int secret_key = 5;
inline constexpr int public_key = 6;
inline constexpr int secret_subkey = 7;
inline constexpr int user_id = 13;
inline constexpr int public_subkey = 14;
inline constexpr int user_attribute = 17;
}  // namespace tag

struct Packet {
  int tag = 0;
  std::string_view whole;  // header and body
  std::string_view body;
};

// The packet at the start of `data`; nullopt when it does not frame there.
std::optional<Packet> first_packet(std::string_view data);

// The packets of `data`, in order; nullopt when it is not a clean packet sequence (truncated,
// or an indeterminate or partial length, which transferable keys never use).
std::optional<std::vector<Packet>> split_packets(std::string_view data);

// A packet with a new-format header.
std::string make_packet(int tag, std::string_view body);

}  // namespace hkpgw::hkp
