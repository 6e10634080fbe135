#pragma once
// What every frontend hands to the proxy, and what it gets back. Frontends
// translate their protocol to and from these types and know nothing else.

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace tinyfaas {

// Header names are canonical (see util/header_names.hpp) by the time an
// Invocation is built, so every handler sees the same spelling whatever the
// client sent.
using HeaderList = std::vector<std::pair<std::string, std::string>>;

// Set by the proxy on every call it sends to a handler (a client's own is
// dropped): the milliseconds left of the call's timeout. The binary handler
// kills the call's processes when they are up; a function may read it.
inline constexpr std::string_view kTimeLeftHeader = "X-Tinyfaas-Timeout-Ms";

struct Invocation {
  std::string function;
  std::string payload;
  HeaderList headers;
};

enum class CallStatus {
  ok,              // the function answered
  notFound,        // no such function
  functionError,   // the function ran and failed (handler answered non-200)
  unavailable,     // the function exists but no instance could take the call
  timeout,         // no answer within the call deadline
  overloaded,      // too many calls queued; try again later
  payloadTooLarge, // request or response above the configured limit
};

struct CallResult {
  CallStatus status = CallStatus::ok;
  // The function's output for ok; a one-line reason otherwise.
  std::string body;
  // Nothing reached the function (e.g. its instance refused the
  // connection), so the call may be sent to another instance.
  bool retryable = false;
};

std::string_view toString(CallStatus status);

}  // namespace tinyfaas
