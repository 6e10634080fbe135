#pragma once
// gRPC clients for TinyFaaS.Request over HTTP/2 by nghttp2: one call in
// flight per client, clients multiplexed as streams over a few connections.
// Everything runs on the client's own io_context: a connection belongs to
// one loop and serves only that loop's clients, so a call costs no thread
// hop (gRPC's C++ library, used before, added 70-100 µs per call).

#include "client_job.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <memory>
#include <string>

namespace tinyfaas::bench {

class GrpcPlan {
 public:
  // `connections` are spread over `loops` (at least one each) and opened
  // lazily by the first call that needs one. `authority` is host:port.
  GrpcPlan(boost::asio::ip::tcp::endpoint endpoint, std::string authority, const std::string& function,
           const std::string& payload, unsigned connections, unsigned loops);
  ~GrpcPlan();
  GrpcPlan(const GrpcPlan&) = delete;
  GrpcPlan& operator=(const GrpcPlan&) = delete;

  struct Impl;
  Impl& impl() const { return *impl_; }

 private:
  std::unique_ptr<Impl> impl_;
};

// `loop`: the index of the io_context this client runs on, the same for all
// clients of one thread.
boost::asio::awaitable<void> runGrpcClient(ClientJob& job, const GrpcPlan& plan, unsigned loop);

}  // namespace tinyfaas::bench
