#pragma once
// The Invoker the frontends get: calls run through the proxy as they are,
// asynchronous ones are stored in the durable queue first.

#include <functional>
#include <string_view>

#include "async_calls/call_queue.hpp"
#include "core/invoker.hpp"
#include "proxy/router.hpp"

namespace tinyfaas::async_calls {

// Lives on the data-plane thread, like the runner, router and queue it uses.
class DurableInvoker final : public Invoker {
 public:
  // `elsewhere` (cluster mode): whether another node has a function this
  // node does not run; its asynchronous calls are stored here as well.
  DurableInvoker(CallRunner& runner, const Router& router, CallQueue& queue,
                 std::function<bool(std::string_view)> elsewhere = {})
      : runner_(runner), router_(router), queue_(queue), elsewhere_(std::move(elsewhere)) {}

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
  std::function<bool(std::string_view)> elsewhere_;
};

}  // namespace tinyfaas::async_calls
