#pragma once
// The one thing frontends need from the rest of the platform.

#include <optional>
#include <string>

#include <boost/asio/awaitable.hpp>

#include "core/invocation.hpp"

namespace tinyfaas {

// Runs calls and completes with their results: what the proxy does, and
// what asynchronous calls are run through.
class CallRunner {
 public:
  virtual ~CallRunner() = default;

  // Runs one call and completes with its result; never throws for anything a
  // client or a function can cause. Must be awaited on the data-plane
  // executor (the one the runner was built with) and completes there.
  virtual boost::asio::awaitable<CallResult> invoke(Invocation invocation) = 0;
};

// The answer to a call accepted for later (X-tinyFaaS-Async, CoAP
// No-Response): ok with the call's id once it is stored durably; notFound
// for an unknown function; overloaded (with the reason) when a queue or the
// store is full.
struct DetachedCall {
  CallStatus status = CallStatus::ok;
  std::string id;      // for GET /calls/ID when ok
  std::string reason;  // one line when not ok
};

// Where an accepted call is; its result once it finished.
struct AsyncCallRecord {
  enum class State { queued, running, done, failed };
  State state = State::queued;
  CallResult result;  // done: the function's answer; failed: the last attempt's
};

class Invoker : public CallRunner {
 public:
  // Stores a call to run later, at least once, with retries; awaited like
  // invoke().
  virtual boost::asio::awaitable<DetachedCall> invokeDetached(Invocation invocation) = 0;
  // The call of that id (GET /calls/ID); nullopt for an id that is unknown,
  // malformed or expired. Awaited like invoke().
  virtual boost::asio::awaitable<std::optional<AsyncCallRecord>> detachedCall(std::string id) = 0;
};

}  // namespace tinyfaas
