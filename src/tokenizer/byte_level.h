// GPT-2's reversible byte <-> unicode mapping used by ByteLevel pre-tokenizers
// and decoders: printable Latin-1 bytes map to themselves, the other 68 bytes
// to U+0100.. in byte order, so every byte is a visible character in vocab.json.
#pragma once

#include <array>
#include <cstdint>

namespace mimo::byte_level {

constexpr bool is_printable(int b) { return (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE); }

constexpr std::array<uint32_t, 256> make_byte_to_char() {
  std::array<uint32_t, 256> t{};
  uint32_t next = 256;
  for (int b = 0; b < 256; ++b) t[b] = is_printable(b) ? uint32_t(b) : next++;
  return t;
}

inline constexpr std::array<uint32_t, 256> kByteToChar = make_byte_to_char();

constexpr std::array<int16_t, 256 + 68> make_char_to_byte() {
  std::array<int16_t, 256 + 68> t{};
  for (auto& v : t) v = -1;
  for (int b = 0; b < 256; ++b) t[kByteToChar[b]] = int16_t(b);
  return t;
}

inline constexpr std::array<int16_t, 256 + 68> kCharToByte = make_char_to_byte();

// The byte a mapped character stands for, or -1 if it is not a mapped character.
constexpr int char_to_byte(uint32_t cp) { return cp < kCharToByte.size() ? kCharToByte[cp] : -1; }

}  // namespace mimo::byte_level
