#pragma once
// One handler instance as the data plane sees it: a Unix socket, a pool of
// idle keep-alive HTTP/1.1 connections to it, and a count of calls in flight.

#include <atomic>
#include <chrono>
#include <cstddef>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include "core/invocation.hpp"

namespace tinyfaas {

struct UpstreamOptions {
  std::chrono::milliseconds callTimeout{std::chrono::seconds(60)};
  std::size_t maxResponseBytes = 16 << 20;
  // Idle connections kept per instance; more may be open while busy.
  std::size_t maxIdleConnections = 64;
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

 private:
  struct Connection;

  boost::asio::awaitable<CallResult> callOnce(const Invocation& invocation,
                                              std::unique_ptr<Connection>& connection, bool& retryable);

  boost::asio::any_io_executor executor_;
  std::string instanceId_;
  std::filesystem::path socketPath_;
  UpstreamOptions options_;
  std::vector<std::unique_ptr<Connection>> idle_;
  std::atomic<std::size_t> outstanding_{0};
};

}  // namespace tinyfaas
