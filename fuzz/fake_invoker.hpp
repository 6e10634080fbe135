#pragma once
// The Invoker the request-path fuzzers put behind a frontend: it answers at
// once, so one input runs to its reply without timers, and it knows a few
// names so that every reply path (ok, large, error, unknown) is reachable.

#include <string>

#include <boost/asio/awaitable.hpp>

#include "core/invoker.hpp"

namespace tinyfaas::fuzz {

class FakeInvoker final : public Invoker {
 public:
  boost::asio::awaitable<CallResult> invoke(Invocation invocation) override { co_return answer(invocation); }

  CallStatus invokeDetached(Invocation invocation) override { return answer(invocation).status; }

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
