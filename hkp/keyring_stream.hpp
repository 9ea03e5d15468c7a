// A keyring file of any size read a bounded piece at a time, for `cache import`: memory is one
// chunk of keys plus one read block, however large the file (a whole keyserver dump is
// gigabytes). Binary packets, or armor blocks decoded line by line as strictly as dearmor() does
// (labels, base64, the CRC-24 of each block, an END line). Packets are framed here only; what
// they mean is parse_keys()'s business, chunk by chunk.
#pragma once

#include <cstddef>
#include <istream>
#include <optional>
#include <string>

namespace hkpgw::hkp {

class KeyringStream {
 public:
  // Chunks hold at most `keys_per_chunk` transferable keys (a primary key packet starts one).
  KeyringStream(std::istream& in, std::size_t keys_per_chunk);

  // The next chunk: whole packets, starting at a primary key packet (or at the first packet).
  // nullopt at the end of the input, or on an error (error() then says what, in one line).
  std::optional<std::string> next();
  const std::string& error() const { return error_; }
  // A PRIVATE (SECRET) KEY BLOCK was among the armor read so far.
  bool private_block() const { return private_block_; }
  // Packets larger than this are refused (no key packet comes close).
  static constexpr std::size_t kMaxPacket = 16 << 20;

 private:
  bool fill();  // decodes more input into pending_; false at the end (or on an error)
  bool fill_armor();
  bool fail(std::string message);

  std::istream& in_;
  const std::size_t keys_per_chunk_;
  bool started_ = false, armored_ = false, eof_ = false;
  std::string pending_;  // decoded bytes not yet handed out
  std::size_t offset_ = 0;
  std::string error_;
  bool private_block_ = false;
  // The armor block being decoded.
  bool in_block_ = false, in_body_ = false, padded_ = false;
  std::string label_, crc_text_;
  std::uint32_t acc_ = 0, crc_ = 0;
  int bits_ = 0;
  std::size_t line_no_ = 0;
};

}  // namespace hkpgw::hkp
