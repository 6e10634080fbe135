#pragma once
// The one thing frontends need from the rest of the platform.

#include <boost/asio/awaitable.hpp>

#include "core/invocation.hpp"

namespace tinyfaas {

class Invoker {
 public:
  virtual ~Invoker() = default;

  // Runs one call and completes with its result; never throws for anything a
  // client or a function can cause. Must be awaited on the data-plane
  // executor (the one the Invoker was built with) and completes there.
  virtual boost::asio::awaitable<CallResult> invoke(Invocation invocation) = 0;

  // Starts a call whose result nobody waits for (X-tinyFaaS-Async). Returns
  // false when the function is unknown, so the caller can answer 404.
  virtual bool invokeDetached(Invocation invocation) = 0;
};

}  // namespace tinyfaas
