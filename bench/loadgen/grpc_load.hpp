#pragma once
// gRPC clients on gRPC's callback API: TinyFaaS.Request, one call in flight
// per client, clients sharing a few channels (HTTP/2 multiplexes them).
// gRPC runs the callbacks on its own threads; each one is posted back to the
// client's io_context, so a client's state stays on one thread.

#include "client_job.hpp"

#include <boost/asio/awaitable.hpp>

#include <memory>
#include <string>

namespace tinyfaas::bench {

class GrpcPlan {
 public:
  // Channels are opened lazily by gRPC on first use.
  GrpcPlan(const std::string& hostPort, std::string function, std::string payload, unsigned channels);
  ~GrpcPlan();
  GrpcPlan(const GrpcPlan&) = delete;
  GrpcPlan& operator=(const GrpcPlan&) = delete;

  struct Impl;
  Impl& impl() const { return *impl_; }

 private:
  std::unique_ptr<Impl> impl_;
};

boost::asio::awaitable<void> runGrpcClient(ClientJob& job, const GrpcPlan& plan);

}  // namespace tinyfaas::bench
