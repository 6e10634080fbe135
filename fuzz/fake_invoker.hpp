#pragma once
// The Invoker the request-path fuzzers put behind a frontend: it answers at
// once, so one input runs to its reply without timers, and it knows a few
// names so that every reply path (ok, large, error, unknown, an asynchronous
// call's result) is reachable.

#include <optional>
#include <string>

#include <boost/asio/awaitable.hpp>

#include "core/invoker.hpp"

namespace tinyfaas::fuzz {

class FakeInvoker final : public Invoker {
 public:
  boost::asio::awaitable<CallResult> invoke(Invocation invocation) override { co_return answer(invocation); }

  boost::asio::awaitable<DetachedCall> invokeDetached(Invocation invocation) override {
    CallResult result = answer(invocation);
    if (result.status != CallStatus::ok) co_return DetachedCall{result.status, {}, std::move(result.body)};
    co_return DetachedCall{CallStatus::ok, std::string(32, 'a'), {}};
  }
  // The one call invokeDetached() accepts, finished; GET /calls/ID of any
  // other id is unknown.
  boost::asio::awaitable<std::optional<AsyncCallRecord>> detachedCall(std::string id) override {
    if (id != std::string(32, 'a')) co_return std::nullopt;
    co_return AsyncCallRecord{AsyncCallRecord::State::done, {CallStatus::ok, "result", false, 201, {{"X-A", "b"}}}};
  }

 private:
  static CallResult answer(const Invocation& invocation) {
    const std::string& name = invocation.function;
    if (name == "echo") return {CallStatus::ok, invocation.payload};
    // Big enough for CoAP's block-wise answers (Block2).
    if (name == "big") return {CallStatus::ok, std::string(3000, 'x')};
    if (name == "fail") return {CallStatus::functionError, "function failed"};
    if (name == "busy") return {CallStatus::overloaded, "too busy"};
    if (name == "slow") return {CallStatus::timeout, "timed out"};
    return {CallStatus::notFound, "function " + name + " not found"};
  }
};

}  // namespace tinyfaas::fuzz
