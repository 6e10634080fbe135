#pragma once
// One handler instance as the data plane sees it: a Unix socket, a pool of
// idle keep-alive HTTP/1.1 connections to it, and a count of calls in flight.

#include <chrono>
#include <cstddef>
#include <deque>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>

#include "core/invocation.hpp"
#include "util/async_sync.hpp"

namespace tinyfaas {

struct UpstreamOptions {
  // From the call's arrival: time spent waiting for a turn counts.
  std::chrono::milliseconds callTimeout{std::chrono::seconds(60)};
  // After a call's timeout (answered at once), how long its connection and
  // its turn stay with the handler waiting for the late answer, which is
  // dropped. The function's code is still running meanwhile, so the turn
  // still counts against maxConcurrentCalls. An instance that has not
  // answered by then is stuck (see Upstream::StuckCallback).
  std::chrono::milliseconds timeoutGrace{std::chrono::seconds(5)};
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

// Lives on the data-plane thread: every method and the destructor run there
// (the Router creates and forgets them). Always owned by a shared_ptr: a
// call that timed out keeps the instance alive through its grace period.
class Upstream : public std::enable_shared_from_this<Upstream> {
 public:
  // Called on the data plane, at most once per instance, when a call was
  // still unanswered timeoutGrace after its timeout: the instance is busy
  // with work nobody waits for, and should be replaced.
  using StuckCallback = std::function<void()>;

  Upstream(boost::asio::any_io_executor executor, std::string instanceId, std::filesystem::path socketPath,
           UpstreamOptions options, StuckCallback onStuck = {});
  ~Upstream();
  Upstream(const Upstream&) = delete;
  Upstream& operator=(const Upstream&) = delete;

  const std::string& instanceId() const { return instanceId_; }
  // Calls waiting for a turn, running, or timed out and still in their grace.
  std::size_t outstanding() const { return outstanding_; }
  // A call outlived its grace period here (data-plane thread only).
  bool stuck() const { return stuck_; }

  boost::asio::awaitable<CallResult> call(const Invocation& invocation);
  // Returns once no call is outstanding and every exchange with the
  // instance has ended, or at `deadline`.
  boost::asio::awaitable<void> drained(std::chrono::steady_clock::time_point deadline);

  // How one attempt on one connection ended, beside its result.
  struct Outcome {
    bool nothingSent = false;  // the handler cannot have seen the request
    bool reusable = false;     // the connection may carry the next call
  };

 private:
  struct Connection;
  struct Exchange;

  using Deadline = std::chrono::steady_clock::time_point;
  enum class Turn { taken, timedOut, queueFull };

  std::unique_ptr<Connection> takeIdle();
  boost::asio::awaitable<Turn> waitTurn(Deadline deadline);
  void endTurn();
  void endCall();
  static boost::asio::awaitable<void> run(Upstream& upstream, std::shared_ptr<Exchange> exchange);
  boost::asio::awaitable<CallResult> callOn(const Exchange& exchange, Deadline deadline,
                                            std::unique_ptr<Connection>& connection, Outcome& outcome);
  boost::asio::awaitable<CallResult> exchangeHttp(const Exchange& exchange, Deadline deadline, Connection& connection,
                                                  Outcome& outcome);
  boost::asio::awaitable<CallResult> exchangeFrame(const Exchange& exchange, Deadline deadline, Connection& connection,
                                                   Outcome& outcome);

  boost::asio::any_io_executor executor_;
  std::string instanceId_;
  std::filesystem::path socketPath_;
  UpstreamOptions options_;
  StuckCallback onStuck_;
  std::vector<std::unique_ptr<Connection>> idle_;
  std::size_t sending_ = 0;  // calls holding a turn
  std::deque<boost::asio::steady_timer*> waiting_;
  std::size_t outstanding_ = 0;
  std::vector<boost::asio::steady_timer*> drainWaiters_;  // woken when outstanding_ drops to 0
  WaitGroup exchanges_;                                   // run() of every call sent, through its grace period
  bool stuck_ = false;
};

}  // namespace tinyfaas
