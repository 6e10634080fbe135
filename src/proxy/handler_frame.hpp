#pragma once
// The length-prefixed framing the shipped runtimes speak on the handler
// socket instead of HTTP/1.1 (custom handlers keep HTTP). Integers are
// big-endian.
//   connection preface, once, before the first request: "\0TF2"
//     (a first byte no HTTP request starts with, so a handler tells the two
//     apart per connection)
//   request:  u32 header block bytes, u32 body bytes, header block, body
//             header block: per header u16 name bytes, name, u32 value bytes, value
//   response: u32 status (the HTTP status the function chose),
//             u32 header block bytes, u32 body bytes, header block, body
//             (header block as in the request: the headers the function set)
// Version 1 ("\0TF1") answered only status and body; the daemon ships its
// handlers, so no handler speaks it any more.
// One request at a time per connection; the handler closes the connection
// only when it cannot answer.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/invocation.hpp"

namespace tinyfaas::frame {

inline constexpr std::string_view kPreface{"\0TF2", 4};
inline constexpr std::size_t kResponseHeadBytes = 12;

// One request, without the preface: the invocation's headers (except a
// kTimeLeftHeader of its own) and kTimeLeftHeader with `timeLeft`.
std::string encodeRequest(const Invocation& invocation, std::chrono::milliseconds timeLeft);

struct ResponseHead {
  std::uint32_t status = 0;
  std::uint32_t headerBytes = 0;
  std::uint32_t bodyBytes = 0;
};
// `head` holds kResponseHeadBytes bytes.
ResponseHead decodeResponseHead(std::string_view head);

// A response's header block; nullopt when its lengths do not add up.
std::optional<HeaderList> decodeHeaders(std::string_view block);

}  // namespace tinyfaas::frame
