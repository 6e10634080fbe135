#pragma once
// What a handler answered (status, headers, body), checked and turned into
// the CallResult every frontend maps to its protocol. Functions are hostile:
// they must not be able to frame the client's connection (Content-Length,
// Transfer-Encoding, Connection, Upgrade, status 101), inject header lines
// (CR/LF) or send headers without bound.

#include <cstddef>
#include <string>

#include "core/invocation.hpp"

namespace tinyfaas {

inline constexpr std::size_t kMaxFunctionHeaders = 64;
inline constexpr std::size_t kMaxFunctionHeaderBytes = 16 << 10;  // names and values together

// status 200-599 is the function's answer (ok below 500, functionError from
// 500); anything else, or headers past the bounds, is a functionError that
// says why. Headers with an illegal name, hop-by-hop and framing headers are
// dropped; control characters in values are removed.
CallResult functionAnswer(unsigned status, HeaderList headers, std::string body);

// A handler's header block (framed or HTTP) larger than any within the
// bounds can be is refused before it is read whole.
inline constexpr std::size_t kMaxHandlerHeaderBlockBytes = 2 * kMaxFunctionHeaderBytes + 8 * kMaxFunctionHeaders;
CallResult functionHeadersTooLarge();

}  // namespace tinyfaas
