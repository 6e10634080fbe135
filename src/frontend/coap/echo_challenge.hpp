#pragma once
// RFC 9175 Echo values that prove a CoAP client owns its source address.
//
// UDP source addresses can be forged: an answer sent to a request that
// claimed someone else's address lands on that victim, and a large answer to
// a small request amplifies the attack. A source proves its address by
// repeating an Echo value it could only have learnt by receiving our answer
// there. The values are stateless: a timestamp and a MAC over it and the
// source (address, port) under a key made at start, so challenging forged
// sources costs no memory.

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>

#include "frontend/coap/exchange_table.hpp"

namespace tinyfaas::coap {

class EchoChallenge {
 public:
  static constexpr std::size_t kBytes = 8;  // 4 of time, 4 of MAC: small enough for any challenge
  using Value = std::array<std::uint8_t, kBytes>;

  // A random key from the kernel; `validity` is how long a value is accepted.
  explicit EchoChallenge(Clock::duration validity = std::chrono::seconds(60));

  Value make(const ExchangeKey& source, Clock::time_point now) const;
  // Whether `value` was made by make() for `source` within the validity.
  bool check(std::span<const std::uint8_t> value, const ExchangeKey& source, Clock::time_point now) const;

 private:
  std::array<std::uint8_t, 4> mac(std::uint32_t seconds, const ExchangeKey& source) const;
  std::uint32_t secondsAt(Clock::time_point now) const;

  std::array<std::uint8_t, 32> key_{};
  Clock::time_point epoch_;
  Clock::duration validity_;
};

}  // namespace tinyfaas::coap
