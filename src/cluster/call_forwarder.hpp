#pragma once
// Calls anywhere: a CallRunner around this node's proxy that sends a call
// it cannot run here (no local instance, or the local queue is full) over
// NATS to a node that runs the function, and serves such calls for the
// functions that run here.
//
// Subjects: a call for FN goes to "tinyfaas.call.FN", which every node with
// a healthy instance of FN subscribes to in queue group "tinyfaas.call.FN",
// so NATS gives each call to one of them. The payload is the message's
// data, the call's headers its NATS headers; the answer comes back the
// same way with the status, code and retryable flag in Tinyfaas-* headers
// and the function's own headers prefixed with "Tinyfaas-H-". A forwarded
// call runs only locally on the node that takes it: no call travels twice.

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>

#include <boost/asio/any_io_executor.hpp>

#include "core/invoker.hpp"

struct __natsConnection;

namespace tinyfaas::cluster {

struct ForwarderOptions {
  std::string nodeName;
  // The daemon's --call-timeout: how long a forwarded call may take when its
  // function sets none; the answer is awaited a little longer.
  std::chrono::milliseconds callTimeout{std::chrono::seconds(60)};
  std::chrono::milliseconds grace{std::chrono::seconds(2)};
  // Calls this node forwards at once, and forwarded calls it runs at once;
  // beyond them a call is refused (overloaded).
  std::size_t maxOutgoing = 1024;
  std::size_t maxIncoming = 1024;
  // --max-body-bytes: the largest input or answer a forwarded call carries.
  std::size_t maxBodyBytes = 16u << 20;
};

// Lives on the data-plane thread. libnats calls back on its own threads;
// those callbacks only post to the data plane.
class CallForwarder final : public CallRunner {
 public:
  CallForwarder(boost::asio::any_io_executor dataPlane, CallRunner& local, __natsConnection* connection,
                ForwarderOptions options);
  ~CallForwarder() override;
  CallForwarder(const CallForwarder&) = delete;
  CallForwarder& operator=(const CallForwarder&) = delete;

  boost::asio::awaitable<CallResult> invoke(Invocation invocation) override;

  // After each registry round (on the data plane): the functions the
  // cluster has with their timeouts (0: the daemon's), and those with a
  // healthy instance here, whose calls this node takes from now on.
  void update(std::map<std::string, std::chrono::milliseconds> registry, std::set<std::string> running);
  // Whether the cluster's registry has `function` (as of the last round).
  bool known(std::string_view function) const { return registry_.find(function) != registry_.end(); }
  // At shutdown: takes no more calls from other nodes.
  void stopServing();
  // Once it stopped serving: until the forwarded calls it runs ended.
  boost::asio::awaitable<void> join();

 public:
  struct Shared;  // what libnats' callbacks reach (call_forwarder.cpp)

 private:
  struct Pending;
  boost::asio::awaitable<CallResult> forward(Invocation invocation);
  boost::asio::awaitable<void> serve(std::string reply, Invocation invocation);
  // Sends `result` to the caller's reply subject, in chunks when large.
  void answer(const std::string& reply, const CallResult& result);

  boost::asio::any_io_executor dataPlane_;
  CallRunner& local_;
  __natsConnection* connection_;
  ForwarderOptions options_;
  std::shared_ptr<Shared> shared_;  // what libnats' callbacks reach, for as long as they may run
  std::map<std::string, std::chrono::milliseconds, std::less<>> registry_;
  std::size_t outgoing_ = 0;
  std::size_t incoming_ = 0;
};

}  // namespace tinyfaas::cluster
