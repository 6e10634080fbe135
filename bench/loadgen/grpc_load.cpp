#include "grpc_load.hpp"

#include "tinyfaas.grpc.pb.h"

#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <grpcpp/grpcpp.h>

#include <vector>

namespace tinyfaas::bench {
namespace asio = boost::asio;
namespace pb = openfogstack::tinyfaas::tinyfaas;

struct GrpcPlan::Impl {
  std::vector<std::unique_ptr<pb::TinyFaaS::Stub>> stubs;
  std::string function;
  std::string payload;
};

GrpcPlan::GrpcPlan(const std::string& hostPort, std::string function, std::string payload, unsigned channels)
    : impl_(std::make_unique<Impl>()) {
  impl_->function = std::move(function);
  impl_->payload = std::move(payload);
  for (unsigned i = 0; i < std::max(1u, channels); ++i) {
    grpc::ChannelArguments args;
    // Without a local subchannel pool, channels to the same address share
    // one TCP connection, and "a few channels" would be one.
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    impl_->stubs.push_back(
        pb::TinyFaaS::NewStub(grpc::CreateCustomChannel(hostPort, grpc::InsecureChannelCredentials(), args)));
  }
}

GrpcPlan::~GrpcPlan() = default;

namespace {

template <class CompletionToken>
auto asyncRequest(pb::TinyFaaS::Stub& stub, grpc::ClientContext& context, const pb::Data& request,
                  pb::Response& response, CompletionToken&& token) {
  return asio::async_initiate<CompletionToken, void(grpc::Status)>(
      [&stub, &context, &request, &response](auto handler) {
        // std::function needs a copyable callable; asio handlers are move-only.
        auto shared = std::make_shared<decltype(handler)>(std::move(handler));
        stub.async()->Request(&context, &request, &response, [shared](grpc::Status status) {
          auto executor = asio::get_associated_executor(*shared);
          asio::post(executor,
                     [shared, status = std::move(status)]() mutable { std::move (*shared)(std::move(status)); });
        });
      },
      token);
}

}  // namespace

asio::awaitable<void> runGrpcClient(ClientJob& job, const GrpcPlan& plan) {
  const auto& impl = plan.impl();
  auto& stub = *impl.stubs[job.id % impl.stubs.size()];
  pb::Data request;
  request.set_functionidentifier(impl.function);
  request.set_data(impl.payload);
  for (std::uint32_t seq = 0; seq < job.calls; ++seq) {
    const auto start = Clock::now();
    if (!job.mayStart(start)) break;
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + job.timeout);
    pb::Response response;
    const grpc::Status status = co_await asyncRequest(stub, context, request, response, asio::use_awaitable);
    if (!status.ok()) {
      job.noteError("gRPC status " + std::to_string(static_cast<int>(status.error_code())) + ": " +
                    status.error_message());
    }
    // The client library reports a missed deadline and a lost connection
    // itself, with these codes: only other codes surely came from the server.
    const bool answered = status.ok() || (status.error_code() != grpc::StatusCode::DEADLINE_EXCEEDED &&
                                          status.error_code() != grpc::StatusCode::UNAVAILABLE);
    job.record(seq, start, Clock::now(), status.ok(), answered);
  }
}

}  // namespace tinyfaas::bench
