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
  ok,               // the function answered, with a status below 500 (see CallResult::code)
  notFound,         // no such function
  functionError,    // the function ran and failed (threw, or answered 5xx or no valid status)
  unavailable,      // the function exists but no instance could take the call
  timeout,          // no answer within the call deadline
  overloaded,       // too many calls queued; try again later
  payloadTooLarge,  // request or response above the configured limit
};

struct CallResult {
  CallStatus status = CallStatus::ok;
  // The function's output for ok; a one-line reason otherwise.
  std::string body;
  // Nothing reached the function (e.g. its instance refused the
  // connection), so the call may be sent to another instance.
  bool retryable = false;
  // The HTTP status the function answered with (200-599), 0 when the answer
  // is the platform's own (not found, timeout...). A 404 the function chose
  // is status ok with code 404: the function worked as its author meant.
  unsigned code = 0;
  // The headers the function set, already screened by the proxy
  // (proxy/function_answer.hpp): no framing or hop-by-hop ones, no CR/LF,
  // bounded in count and size.
  HeaderList headers{};
};

std::string_view toString(CallStatus status);

}  // namespace tinyfaas
