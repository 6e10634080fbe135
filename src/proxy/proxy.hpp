#pragma once
// The Invoker every frontend calls: routes a call to an instance and relays it.

#include <chrono>
#include <cstddef>

#include <boost/asio/any_io_executor.hpp>

#include "core/invoker.hpp"
#include "proxy/router.hpp"

namespace tinyfaas {

struct ProxyOptions {
  // Fire-and-forget calls (X-tinyFaaS-Async, CoAP No-Response) in flight at
  // once, and the bytes of their inputs together; past either the caller is
  // told the node is overloaded instead of memory growing unbounded.
  std::size_t maxDetachedCalls = 1024;
  std::size_t maxDetachedBytes = 32u << 20;
  // How long a call to a function with no instance up waits for one to
  // start (functions that scale from zero), before it is answered 503.
  std::chrono::milliseconds coldStartWait{std::chrono::seconds(10)};
};

// Lives on the data-plane thread with its Router.
class Proxy final : public Invoker {
 public:
  Proxy(boost::asio::any_io_executor executor, Router& router, ProxyOptions options = {});

  boost::asio::awaitable<CallResult> invoke(Invocation invocation) override;
  CallStatus invokeDetached(Invocation invocation) override;

  // Fire-and-forget calls still running, and the bytes of their inputs.
  std::size_t detachedCalls() const { return detachedCalls_; }
  std::size_t detachedBytes() const { return detachedBytes_; }

 private:
  boost::asio::any_io_executor executor_;
  Router& router_;
  ProxyOptions options_;
  std::size_t detachedCalls_ = 0;
  std::size_t detachedBytes_ = 0;
};

}  // namespace tinyfaas
