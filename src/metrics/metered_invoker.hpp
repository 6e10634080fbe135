#pragma once
// An Invoker that counts and times the calls of one protocol's frontend and
// passes them on: the daemon gives each frontend its own, all sharing one
// CallMetrics, so neither the frontends nor the proxy know about metrics.

#include "core/invoker.hpp"
#include "metrics/call_metrics.hpp"

namespace tinyfaas::metrics {

// Lives on the data-plane thread, like the Invoker it wraps.
class MeteredInvoker final : public Invoker {
 public:
  MeteredInvoker(Invoker& inner, CallMetrics& metrics, Protocol protocol)
      : inner_(inner), metrics_(metrics), protocol_(protocol) {}

  boost::asio::awaitable<CallResult> invoke(Invocation invocation) override;
  boost::asio::awaitable<DetachedCall> invokeDetached(Invocation invocation) override;
  boost::asio::awaitable<std::optional<AsyncCallRecord>> detachedCall(std::string id) override {
    return inner_.detachedCall(std::move(id));
  }

 private:
  Invoker& inner_;
  CallMetrics& metrics_;
  Protocol protocol_;
};

}  // namespace tinyfaas::metrics
