#pragma once
// One handler instance as the data plane sees it: a Unix socket, a pool of
// idle keep-alive HTTP/1.1 connections to it, and a count of calls in flight.

#include <atomic>
#include <chrono>
#include <cstddef>
#include <deque>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>

#include "core/invocation.hpp"

namespace tinyfaas {

struct UpstreamOptions {
  // From the call's arrival: time spent waiting for a turn counts.
  std::chrono::milliseconds callTimeout{std::chrono::seconds(60)};
  std::size_t maxResponseBytes = 16 << 20;
  // Calls sent to the instance at once; later ones wait their turn here, in
  // arrival order. A burst of a thousand clients then costs the handler a
  // few connections instead of a thousand, and no call overtakes another.
  std::size_t maxConcurrentCalls = 128;
  // Calls waiting for a turn at once; one more is refused at once
  // (CallStatus::overloaded), so a flood costs neither memory nor latency
  // for the calls already queued.
  std::size_t maxQueuedCalls = 1024;
  // Idle connections kept per instance. Below maxConcurrentCalls, a load
  // that keeps the instance just under its limit closes and reopens
  // connections all the time (measured: half the throughput at 256 clients
  // on 2 instances with 64 here).
  std::size_t maxIdleConnections = 128;
  // The handler speaks the shipped runtimes' framing (proxy/handler_frame.hpp)
  // instead of HTTP/1.1.
  bool framed = false;
};

// Lives on the data-plane thread: call() and the destructor run there. Only
// outstanding() may be read from other threads (the manager polls it to know
// when a replaced instance has drained).
class Upstream {
 public:
  Upstream(boost::asio::any_io_executor executor, std::string instanceId,
           std::filesystem::path socketPath, UpstreamOptions options);
  ~Upstream();
  Upstream(const Upstream&) = delete;
  Upstream& operator=(const Upstream&) = delete;

  const std::string& instanceId() const { return instanceId_; }
  std::size_t outstanding() const { return outstanding_.load(std::memory_order_relaxed); }

  boost::asio::awaitable<CallResult> call(const Invocation& invocation);

  // How one attempt on one connection ended, beside its result.
  struct Outcome {
    bool nothingSent = false;  // the handler cannot have seen the request
    bool reusable = false;     // the connection may carry the next call
  };

 private:
  struct Connection;

  using Deadline = std::chrono::steady_clock::time_point;
  enum class Turn { taken, timedOut, queueFull };

  std::unique_ptr<Connection> takeIdle();
  boost::asio::awaitable<Turn> waitTurn(Deadline deadline);
  void endTurn();
  boost::asio::awaitable<CallResult> callOn(const Invocation& invocation, Deadline deadline,
                                            std::unique_ptr<Connection>& connection, Outcome& outcome);
  boost::asio::awaitable<CallResult> exchangeHttp(const Invocation& invocation, Deadline deadline,
                                                  Connection& connection, Outcome& outcome);
  boost::asio::awaitable<CallResult> exchangeFrame(const Invocation& invocation, Deadline deadline,
                                                   Connection& connection, Outcome& outcome);

  boost::asio::any_io_executor executor_;
  std::string instanceId_;
  std::filesystem::path socketPath_;
  UpstreamOptions options_;
  std::vector<std::unique_ptr<Connection>> idle_;
  std::size_t sending_ = 0;  // calls holding a turn
  std::deque<boost::asio::steady_timer*> waiting_;
  std::atomic<std::size_t> outstanding_{0};
};

}  // namespace tinyfaas
