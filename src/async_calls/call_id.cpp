#include "async_calls/call_id.hpp"

#include <sys/random.h>

#include <array>
#include <cerrno>
#include <cstdint>
#include <cstdlib>

namespace tinyfaas::async_calls {

std::string newCallId() {
  std::array<std::uint8_t, kCallIdLength / 2> bits{};
  std::size_t filled = 0;
  while (filled < bits.size()) {
    const ssize_t got = getrandom(bits.data() + filled, bits.size() - filled, 0);
    if (got > 0) {
      filled += static_cast<std::size_t>(got);
    } else if (errno != EINTR) {
      // Linux >= 3.17 always has getrandom, and it does not fail for 16
      // bytes once the pool is up: a guessable id is no fallback.
      std::abort();
    }
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string id;
  id.reserve(kCallIdLength);
  for (std::uint8_t byte : bits) {
    id.push_back(kHex[byte >> 4]);
    id.push_back(kHex[byte & 0xf]);
  }
  return id;
}

bool isCallId(std::string_view text) {
  if (text.size() != kCallIdLength) return false;
  for (char c : text) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

}  // namespace tinyfaas::async_calls
