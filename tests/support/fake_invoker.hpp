#pragma once
// A configurable fake Invoker for the frontend and metrics tests: each
// function name answers as its Behaviour says (a fixed result, an echo, after
// a delay, or once the test opens its gate); names without one do not exist,
// unless a default is set. Records every call. invoke() runs on the loop
// thread; the test thread reads through the accessors (hence the mutex).

#include <chrono>
#include <cstddef>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>

#include "core/invoker.hpp"

namespace tinyfaas::test {

struct Behaviour {
  CallResult result;
  bool echo = false;  // answer ok with the request payload
  std::chrono::milliseconds delay{0};
  bool gated = false;                    // wait until openGates() (or 30 s)
  CallStatus detached = CallStatus::ok;  // what invokeDetached() answers (with a reason when not ok)
};

Behaviour answers(CallResult result);
Behaviour answers(CallStatus status, std::string body, std::chrono::milliseconds delay = {});
Behaviour echoes();
// Answers ok with `body` once the test calls openGates().
Behaviour gated(std::string body);

class FakeInvoker final : public Invoker {
 public:
  void set(const std::string& function, Behaviour behaviour);
  // The Behaviour of every name without its own.
  void setDefault(Behaviour behaviour);
  // From now on invoke() notes whether it ever runs on another thread.
  void expectThread(std::thread::id loop);

  boost::asio::awaitable<CallResult> invoke(Invocation invocation) override;
  boost::asio::awaitable<DetachedCall> invokeDetached(Invocation invocation) override;
  boost::asio::awaitable<std::optional<AsyncCallRecord>> detachedCall(std::string id) override;

  // What detachedCall(id) answers; ids without one are unknown.
  void setRecord(const std::string& id, AsyncCallRecord record);
  // The ids invokeDetached() gave, in order: "00...01", "00...02", ...
  static std::string detachedId(std::size_t n);

  // Loop thread only: gated calls complete; how many wait.
  void openGates();
  std::size_t waiting() const;

  std::size_t calls(const std::string& function) const;
  std::size_t detachedCalls(const std::string& function) const;
  std::size_t completed(const std::string& function) const;
  std::size_t completed() const;  // of every function
  std::vector<Invocation> invocations() const;
  std::vector<Invocation> detachedInvocations() const;
  void forgetCalls();
  bool ranOffThread() const;

 private:
  std::optional<Behaviour> behaviourOf(const std::string& function) const;

  mutable std::mutex mutex_;
  std::map<std::string, Behaviour> behaviours_;
  std::optional<Behaviour> default_;
  std::optional<std::thread::id> thread_;
  bool offThread_ = false;
  std::vector<Invocation> invocations_;
  std::vector<Invocation> detachedInvocations_;
  std::map<std::string, std::size_t> calls_;
  std::map<std::string, std::size_t> detached_;
  std::size_t accepted_ = 0;
  std::map<std::string, AsyncCallRecord> records_;
  std::map<std::string, std::size_t> completed_;
  std::vector<std::shared_ptr<boost::asio::steady_timer>> gates_;  // loop thread
};

}  // namespace tinyfaas::test
