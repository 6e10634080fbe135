#pragma once
// The Invoker the frontends get: calls run through the proxy as they are,
// asynchronous ones are stored in the durable queue first.

#include "async_calls/call_queue.hpp"
#include "core/invoker.hpp"
#include "proxy/router.hpp"

namespace tinyfaas::async_calls {

// Lives on the data-plane thread, like the runner, router and queue it uses.
class DurableInvoker final : public Invoker {
 public:
  DurableInvoker(CallRunner& runner, const Router& router, CallQueue& queue)
      : runner_(runner), router_(router), queue_(queue) {}

  boost::asio::awaitable<CallResult> invoke(Invocation invocation) override {
    return runner_.invoke(std::move(invocation));
  }
  boost::asio::awaitable<DetachedCall> invokeDetached(Invocation invocation) override;
  boost::asio::awaitable<std::optional<AsyncCallRecord>> detachedCall(std::string id) override {
    return queue_.find(std::move(id));
  }

 private:
  CallRunner& runner_;
  const Router& router_;
  CallQueue& queue_;
};

}  // namespace tinyfaas::async_calls
