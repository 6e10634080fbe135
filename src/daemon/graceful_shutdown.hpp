#pragma once
// The daemon's shutdown sequence for calls: stop taking new ones everywhere
// at once, let those in flight finish up to a deadline, answer the rest with
// an error, and log what happened.

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include "core/drainable.hpp"

namespace tinyfaas {

struct DrainTarget {
  std::string name;  // for the log: "HTTP", "CoAP", ...
  Drainable* endpoint;
  boost::asio::any_io_executor executor;  // the one `endpoint` lives on
};

// Lives on one loop (the management loop); reaches each endpoint by posting
// to the executor it lives on.
class GracefulShutdown {
 public:
  GracefulShutdown(std::vector<DrainTarget> targets, std::chrono::seconds timeout);

  // Runs once: returns when every call finished or the deadline passed (or
  // hurry() was called) and what still ran was cut short.
  boost::asio::awaitable<void> drain();

  // Ends the wait at the next poll (a second signal).
  void hurry() { hurried_ = true; }

 private:
  struct Counts {
    std::vector<std::size_t> calls;  // per target
    std::string delivering;          // names of the targets with answers not acknowledged yet
    std::size_t total() const;
  };

  boost::asio::awaitable<Counts> count();
  std::string describe(const Counts& counts) const;
  // Once no call runs: true while answers given still wait for their
  // clients' acknowledgement, up to kAcknowledgeWait (a client that gave up
  // never acknowledges, and nothing tells us it is gone).
  bool awaitAcknowledgements(const Counts& counts);

  std::vector<DrainTarget> targets_;
  std::chrono::seconds timeout_;
  bool hurried_ = false;
  std::optional<std::chrono::steady_clock::time_point> acknowledgeSince_;
};

}  // namespace tinyfaas
