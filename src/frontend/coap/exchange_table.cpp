#include "frontend/coap/exchange_table.hpp"

#include <cassert>
#include <cstring>

namespace tinyfaas::coap {

std::size_t ExchangeKeyHash::operator()(const ExchangeKey& key) const noexcept {
  std::uint64_t a;
  std::uint64_t b;
  std::memcpy(&a, key.address.data(), 8);
  std::memcpy(&b, key.address.data() + 8, 8);
  std::uint64_t h = a ^ (b * 0x9E3779B97F4A7C15ull) ^
                    ((std::uint64_t{key.port} << 32) | (std::uint64_t{key.messageId} << 16) | key.family);
  // murmur3's finaliser: every input bit reaches every output bit.
  h ^= h >> 33;
  h *= 0xFF51AFD7ED558CCDull;
  h ^= h >> 33;
  h *= 0xC4CEB9FE1A85EC53ull;
  h ^= h >> 33;
  return static_cast<std::size_t>(h);
}

ExchangeTable::ExchangeTable(ExchangeLimits limits) : limits_(limits) {}

Exchange* ExchangeTable::find(const ExchangeKey& key) {
  auto it = index_.find(key);
  return it == index_.end() ? nullptr : &slots_[it->second];
}

Exchange* ExchangeTable::get(ExchangeRef ref) {
  if (ref.slot >= slots_.size()) return nullptr;
  Exchange& exchange = slots_[ref.slot];
  if (exchange.phase == Exchange::Phase::free || exchange.generation != ref.generation) return nullptr;
  return &exchange;
}

ExchangeRef ExchangeTable::refOf(const Exchange& exchange) const { return {exchange.slot, exchange.generation}; }

ExchangeRef ExchangeTable::insert(const ExchangeKey& key, Clock::time_point now) {
  std::uint32_t slot;
  if (!freeSlots_.empty()) {
    slot = freeSlots_.back();
    freeSlots_.pop_back();
  } else {
    slot = static_cast<std::uint32_t>(slots_.size());
    slots_.emplace_back().slot = slot;
  }
  Exchange& exchange = slots_[slot];
  const std::uint32_t generation = exchange.generation + 1;
  exchange = Exchange{};
  exchange.slot = slot;
  exchange.generation = generation;
  exchange.phase = Exchange::Phase::inFlight;
  exchange.key = key;
  exchange.arrived = now;
  [[maybe_unused]] const bool inserted = index_.emplace(key, slot).second;
  assert(inserted);
  ++inFlight_;
  return {slot, generation};
}

std::size_t ExchangeTable::bytesOf(const Exchange& exchange) {
  // Only the body varies; the fixed part is bounded by maxDone.
  return exchange.sharedBody ? exchange.sharedBody->size() : exchange.body.size();
}

void ExchangeTable::markDone(Exchange& exchange, Clock::time_point now) {
  assert(exchange.phase == Exchange::Phase::inFlight);
  exchange.phase = Exchange::Phase::done;
  exchange.completed = now;
  exchange.session = nullptr;
  exchange.request = nullptr;
  // Only a piggy-backed answer is ever sent again; anything else needs no
  // body to answer a duplicate (an empty ACK, or silence).
  if (!exchange.piggybacked) {
    exchange.body = std::string();
    exchange.sharedBody.reset();
  }
  --inFlight_;
  ++done_;
  doneBytes_ += bytesOf(exchange);
  doneOrder_.push_back(refOf(exchange));
  evict(now);
}

void ExchangeTable::release(Exchange& exchange) {
  index_.erase(exchange.key);
  exchange.phase = Exchange::Phase::free;
  exchange.body = std::string();
  exchange.sharedBody.reset();
  exchange.session = nullptr;
  exchange.request = nullptr;
  freeSlots_.push_back(exchange.slot);
}

void ExchangeTable::erase(Exchange& exchange) {
  if (exchange.phase == Exchange::Phase::inFlight) {
    --inFlight_;
  } else if (exchange.phase == Exchange::Phase::done) {
    --done_;
    doneBytes_ -= bytesOf(exchange);
    // Its doneOrder_ entry goes stale and is skipped by the generation check.
  } else {
    return;
  }
  release(exchange);
}

void ExchangeTable::evict(Clock::time_point now) {
  while (!doneOrder_.empty()) {
    Exchange* oldest = get(doneOrder_.front());
    if (oldest == nullptr || oldest->phase != Exchange::Phase::done) {
      doneOrder_.pop_front();
      continue;
    }
    const bool expired = oldest->completed + limits_.doneLifetime <= now;
    if (!expired && done_ <= limits_.maxDone && doneBytes_ <= limits_.maxDoneBytes) break;
    doneOrder_.pop_front();
    erase(*oldest);
  }
}

bool ExchangeTable::nextExpiry(Clock::time_point& when) const {
  for (const ExchangeRef& ref : doneOrder_) {
    if (ref.slot >= slots_.size()) continue;
    const Exchange& exchange = slots_[ref.slot];
    if (exchange.phase != Exchange::Phase::done || exchange.generation != ref.generation) continue;
    when = exchange.completed + limits_.doneLifetime;
    return true;
  }
  return false;
}

}  // namespace tinyfaas::coap
