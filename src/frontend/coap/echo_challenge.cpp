#include "frontend/coap/echo_challenge.hpp"

#include <nettle/hmac.h>
#include <nettle/memops.h>
#include <sys/random.h>

#include <cstring>

namespace tinyfaas::coap {

EchoChallenge::EchoChallenge(Clock::duration validity) : epoch_(Clock::now()), validity_(validity) {
  std::size_t filled = 0;
  while (filled < key_.size()) {
    const ssize_t n = ::getrandom(key_.data() + filled, key_.size() - filled, 0);
    if (n > 0) filled += static_cast<std::size_t>(n);
  }
}

std::uint32_t EchoChallenge::secondsAt(Clock::time_point now) const {
  return static_cast<std::uint32_t>(std::chrono::duration_cast<std::chrono::seconds>(now - epoch_).count());
}

std::array<std::uint8_t, 4> EchoChallenge::mac(std::uint32_t seconds, const ExchangeKey& source) const {
  std::uint8_t message[4 + 1 + 16 + 2];
  for (int i = 0; i < 4; ++i) message[i] = static_cast<std::uint8_t>(seconds >> (24 - 8 * i));
  message[4] = source.family;
  std::memcpy(message + 5, source.address.data(), source.address.size());
  std::memcpy(message + 21, &source.port, 2);
  hmac_sha256_ctx context;
  hmac_sha256_set_key(&context, key_.size(), key_.data());
  hmac_sha256_update(&context, sizeof message, message);
  std::array<std::uint8_t, 4> out{};
  hmac_sha256_digest(&context, out.size(), out.data());
  return out;
}

EchoChallenge::Value EchoChallenge::make(const ExchangeKey& source, Clock::time_point now) const {
  const std::uint32_t seconds = secondsAt(now);
  Value value{};
  for (int i = 0; i < 4; ++i) value[static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(seconds >> (24 - 8 * i));
  const auto tag = mac(seconds, source);
  std::memcpy(value.data() + 4, tag.data(), tag.size());
  return value;
}

bool EchoChallenge::check(std::span<const std::uint8_t> value, const ExchangeKey& source, Clock::time_point now) const {
  if (value.size() != kBytes) return false;
  std::uint32_t seconds = 0;
  for (int i = 0; i < 4; ++i) seconds = seconds << 8 | value[static_cast<std::size_t>(i)];
  const std::uint32_t current = secondsAt(now);
  if (seconds > current || std::chrono::seconds(current - seconds) > validity_) return false;
  const auto tag = mac(seconds, source);
  return memeql_sec(tag.data(), value.data() + 4, tag.size()) != 0;
}

}  // namespace tinyfaas::coap
