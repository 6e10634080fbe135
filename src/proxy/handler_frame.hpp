#pragma once
// The length-prefixed framing the shipped runtimes speak on the handler
// socket instead of HTTP/1.1 (custom handlers keep HTTP). Integers are
// big-endian.
//   connection preface, once, before the first request: "\0TF1"
//     (a first byte no HTTP request starts with, so a handler tells the two
//     apart per connection)
//   request:  u32 header block bytes, u32 body bytes, header block, body
//             header block: per header u16 name bytes, name, u32 value bytes, value
//   response: u32 status (HTTP code, 200 = the function's output),
//             u32 body bytes, body
// One request at a time per connection; the handler closes the connection
// only when it cannot answer.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/invocation.hpp"

namespace tinyfaas::frame {

inline constexpr std::string_view kPreface{"\0TF1", 4};
inline constexpr std::size_t kResponseHeadBytes = 8;

// One request, without the preface: the invocation's headers (except a
// kTimeLeftHeader of its own) and kTimeLeftHeader with `timeLeft`.
std::string encodeRequest(const Invocation& invocation, std::chrono::milliseconds timeLeft);

struct ResponseHead {
  std::uint32_t status = 0;
  std::uint32_t bodyBytes = 0;
};
// `head` holds kResponseHeadBytes bytes.
ResponseHead decodeResponseHead(std::string_view head);

}  // namespace tinyfaas::frame
