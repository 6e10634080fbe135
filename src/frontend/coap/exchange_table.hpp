#pragma once
// Message-layer bookkeeping for the CoAP frontend: every request whose
// function runs, from arrival until well after its answer left, keyed by the
// peer's address and the request's Message ID.
//
// libcoap 4.3.1 does no duplicate detection of its own for requests once the
// handler has returned (only while a coap_async_t for the token is pending), so
// a retransmitted Confirmable POST whose ACK got lost would run the function a
// second time. RFC 7252 4.5 asks for the same answer instead; this table is
// what lets the frontend give it.
//
// Plain data structure, no I/O and no libcoap, so it is unit-tested on its own.
// Owned by the CoAP frontend's loop thread.

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/invocation.hpp"

namespace tinyfaas::coap {

using Clock = std::chrono::steady_clock;

// Who sent a message and which Message ID it carried. The address is kept as
// raw bytes (IPv4 in the first 4) so that hashing and comparing are memcmp.
struct ExchangeKey {
  std::array<std::uint8_t, 16> address{};
  std::uint16_t port = 0;
  std::uint16_t messageId = 0;
  std::uint8_t family = 0;

  friend bool operator==(const ExchangeKey&, const ExchangeKey&) = default;
};

struct ExchangeKeyHash {
  std::size_t operator()(const ExchangeKey& key) const noexcept;
};

// A handle that stays safe to hold after the slot was reused: get() checks the
// generation.
struct ExchangeRef {
  std::uint32_t slot = 0;
  std::uint32_t generation = 0;
};

struct Exchange {
  enum class Phase : std::uint8_t { free, inFlight, done };

  Phase phase = Phase::free;
  std::uint32_t slot = 0;
  std::uint32_t generation = 0;
  ExchangeKey key;

  bool confirmable = false;
  // An empty ACK went out (the piggy-back window passed, or the client
  // retransmitted first): the answer has to be a separate response.
  bool acked = false;
  // The answer went out inside the ACK, so a late duplicate must get that same
  // answer again rather than an empty ACK.
  bool piggybacked = false;
  // The call's result (or the deadline's stand-in) is in; later ones are
  // ignored.
  bool haveResult = false;
  // RFC 7967 No-Response bits (2: 2.xx, 8: 4.xx, 16: 5.xx).
  std::uint8_t noResponse = 0;

  Clock::time_point arrived{};
  Clock::time_point completed{};

  // While in flight: the peer's coap_session_t (a reference held) and our
  // copy of the request (coap_pdu_t), both owned by the frontend. Untyped so
  // that this header stays free of libcoap's (which pull in syslog macros).
  void* session = nullptr;
  void* request = nullptr;
  // The Block1 option of the last block of a block-wise upload, to be echoed
  // in the final response (RFC 7959 2.3); -1 when the request was one datagram.
  std::int32_t block1 = -1;
  // Largest datagram an answer may be: 3 x the request's size while its
  // source has not proven its address (amplification), 0 without limit.
  std::uint16_t answerLimit = 0;

  CallStatus status = CallStatus::ok;
  // The function's own HTTP status and its Content-Type as a CoAP
  // Content-Format (-1: none); 0 and -1 for the platform's answers.
  unsigned functionCode = 0;
  int contentFormat = -1;
  std::string body;
  // Set when libcoap keeps a pointer to the body for a block-wise (Block2)
  // answer that may outlive this exchange.
  std::shared_ptr<const std::string> sharedBody;
};

struct ExchangeLimits {
  // Finished exchanges kept to answer duplicates; the oldest go first.
  std::size_t maxDone = 8192;
  // Response bytes kept for duplicates of piggy-backed answers.
  std::size_t maxDoneBytes = 4u << 20;
  // RFC 7252 EXCHANGE_LIFETIME: after this no retransmission can arrive.
  Clock::duration doneLifetime = std::chrono::seconds(247);
};

class ExchangeTable {
 public:
  explicit ExchangeTable(ExchangeLimits limits = {});

  // The exchange for this key in any phase other than free, or nullptr.
  Exchange* find(const ExchangeKey& key);
  Exchange* get(ExchangeRef ref);
  ExchangeRef refOf(const Exchange& exchange) const;

  // Starts a new in-flight exchange; the key must not be present.
  ExchangeRef insert(const ExchangeKey& key, Clock::time_point now);
  // Moves an in-flight exchange to done (kept for duplicates) and evicts what
  // the limits no longer allow.
  void markDone(Exchange& exchange, Clock::time_point now);
  // Forgets an exchange at once, in any phase.
  void erase(Exchange& exchange);
  // Drops done exchanges older than the lifetime or beyond the limits.
  void evict(Clock::time_point now);

  // When the oldest done exchange expires, if any.
  bool nextExpiry(Clock::time_point& when) const;

  std::size_t inFlight() const { return inFlight_; }
  std::size_t done() const { return done_; }
  std::size_t doneBytes() const { return doneBytes_; }

  // Every exchange not free, for teardown.
  template <typename F>
  void forEach(F&& f) {
    for (Exchange& exchange : slots_)
      if (exchange.phase != Exchange::Phase::free) f(exchange);
  }

 private:
  static std::size_t bytesOf(const Exchange& exchange);
  void release(Exchange& exchange);

  ExchangeLimits limits_;
  // A deque keeps Exchange addresses stable while slots are added.
  std::deque<Exchange> slots_;
  std::vector<std::uint32_t> freeSlots_;
  std::unordered_map<ExchangeKey, std::uint32_t, ExchangeKeyHash> index_;
  // Done exchanges in completion order, so the oldest is at the front.
  std::deque<ExchangeRef> doneOrder_;
  std::size_t inFlight_ = 0;
  std::size_t done_ = 0;
  std::size_t doneBytes_ = 0;
};

}  // namespace tinyfaas::coap
