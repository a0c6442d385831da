// Big-endian writers and a bounds-checked reader for the rpc encodings. Internal.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/strings/string_view.h"

namespace netlayer::rpc::internal {

// absl::string_view is not std::string_view in this Abseil (DESIGN.md §9).
inline absl::string_view AV(std::string_view s) { return absl::string_view(s.data(), s.size()); }

inline void PutU8(std::string* out, uint8_t v) { out->push_back(static_cast<char>(v)); }
inline void PutU16(std::string* out, uint16_t v) {
  out->push_back(static_cast<char>(v >> 8));
  out->push_back(static_cast<char>(v));
}
inline void PutU32(std::string* out, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out->push_back(static_cast<char>(v >> shift));
}
inline void PutU64(std::string* out, uint64_t v) {
  for (int shift = 56; shift >= 0; shift -= 8) out->push_back(static_cast<char>(v >> shift));
}

// Every read checks the bytes left first; a failed read consumes nothing.
class Reader {
 public:
  explicit Reader(std::string_view data) : whole_(data), rest_(data) {}
  bool U8(uint8_t* v) { return Int(1, v); }
  bool U16(uint16_t* v) { return Int(2, v); }
  bool U32(uint32_t* v) { return Int(4, v); }
  bool U64(uint64_t* v) { return Int(8, v); }
  bool Bytes(size_t n, std::string_view* out) {
    if (rest_.size() < n) return false;
    *out = rest_.substr(0, n);
    rest_.remove_prefix(n);
    return true;
  }
  std::string_view Rest() {
    std::string_view r = rest_;
    rest_ = {};
    return r;
  }
  bool empty() const { return rest_.empty(); }
  size_t left() const { return rest_.size(); }
  std::string_view whole() const { return whole_; }

 private:
  template <typename T>
  bool Int(size_t n, T* v) {
    if (rest_.size() < n) return false;
    uint64_t x = 0;
    for (size_t i = 0; i < n; ++i) x = (x << 8) | static_cast<unsigned char>(rest_[i]);
    rest_.remove_prefix(n);
    *v = static_cast<T>(x);
    return true;
  }
  std::string_view whole_;
  std::string_view rest_;
};

}  // namespace netlayer::rpc::internal
