#pragma once
// The id of an asynchronous call, as GET /calls/ID takes it: 128 random
// bits from the kernel (getrandom), as 32 lower-case hex digits, so that
// nobody reaches another client's result by guessing.

#include <string>
#include <string_view>

namespace tinyfaas::async_calls {

inline constexpr std::size_t kCallIdLength = 32;

std::string newCallId();
// Whether `text` has the shape of an id (checked before any lookup).
bool isCallId(std::string_view text);

}  // namespace tinyfaas::async_calls
