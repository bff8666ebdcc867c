#pragma once
// Fixed-width unsigned integers in byte buffers: IDX files and most image headers are big-endian,
// BMP, WebP and little-endian TIFF are not. The one place these are written out.

#include <cstdint>
#include <string>

namespace mnist {

inline uint32_t load_be16(const uint8_t* p) {
  return (uint32_t{p[0]} << 8) | uint32_t{p[1]};
}
inline uint32_t load_be32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}
inline uint32_t load_le16(const uint8_t* p) {
  return (uint32_t{p[1]} << 8) | uint32_t{p[0]};
}
inline uint32_t load_le24(const uint8_t* p) {
  return (uint32_t{p[2]} << 16) | (uint32_t{p[1]} << 8) | uint32_t{p[0]};
}
inline uint32_t load_le32(const uint8_t* p) {
  return (uint32_t{p[3]} << 24) | (uint32_t{p[2]} << 16) | (uint32_t{p[1]} << 8) | uint32_t{p[0]};
}

/// Appends `v` to `out` as four big-endian bytes.
inline void append_be32(std::string& out, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8)
    out.push_back(static_cast<char>((v >> shift) & 0xFF));
}

}  // namespace mnist
