#pragma once
// nghttp2 speaks in uint8_t pointers and lengths; these convert to and from
// string_view. Shared by the gRPC endpoint and the load generator's client.

#include <nghttp2/nghttp2.h>

#include <cstdint>
#include <string_view>

namespace tinyfaas::nghttp2text {

// A header field that refers to `name` and `value`, which must outlive the
// submit call that copies it.
inline nghttp2_nv field(std::string_view name, std::string_view value) {
  return {reinterpret_cast<std::uint8_t*>(const_cast<char*>(name.data())),
          reinterpret_cast<std::uint8_t*>(const_cast<char*>(value.data())), name.size(), value.size(),
          NGHTTP2_NV_FLAG_NONE};
}

inline std::string_view text(const std::uint8_t* bytes, std::size_t size) {
  return {reinterpret_cast<const char*>(bytes), size};
}

}  // namespace tinyfaas::nghttp2text
