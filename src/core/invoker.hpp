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
  // ok when the call was accepted, notFound for an unknown function, and
  // overloaded when too many such calls are already running; the caller
  // answers accordingly (202, 404, 503).
  virtual CallStatus invokeDetached(Invocation invocation) = 0;
};

}  // namespace tinyfaas
