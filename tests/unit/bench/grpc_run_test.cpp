// runLoad over gRPC against an in-test TinyFaaS service on 127.0.0.1:0.

#include "run.hpp"
#include "tinyfaas.grpc.pb.h"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <string>
#include <string_view>

namespace tinyfaas::bench {
namespace {

namespace asio = boost::asio;
namespace pb = openfogstack::tinyfaas::tinyfaas;
using namespace std::chrono_literals;

// Echoes known functions, NOT_FOUND for others, an error whose message
// needs percent-encoding for "garbled", never answers "slow" (the reactor is
// finished only at cancellation, i.e. the client's deadline).
// Non-ASCII and '%', which travel percent-encoded in grpc-message.
constexpr std::string_view kGarbledReason = "100% f\u00fcr \u00e9chec";

class EchoService final : public pb::TinyFaaS::CallbackService {
 public:
  std::atomic<int> calls{0};

  grpc::ServerUnaryReactor* Request(grpc::CallbackServerContext* context, const pb::Data* request,
                                    pb::Response* response) override {
    ++calls;
    auto* reactor = context->DefaultReactor();
    if (request->functionidentifier() == "slow") {
      return new SlowReactor();
    }
    if (request->functionidentifier() == "garbled") {
      reactor->Finish(grpc::Status(grpc::StatusCode::INTERNAL, std::string(kGarbledReason)));
      return reactor;
    }
    if (request->functionidentifier() != "echo") {
      reactor->Finish(grpc::Status(grpc::StatusCode::NOT_FOUND, "no such function"));
      return reactor;
    }
    response->set_response(request->data());
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }

 private:
  class SlowReactor final : public grpc::ServerUnaryReactor {
    void OnCancel() override { Finish(grpc::Status::CANCELLED); }
    void OnDone() override { delete this; }
  };
};

class GrpcRun : public ::testing::Test {
 protected:
  void SetUp() override {
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port_);
    builder.RegisterService(&service_);
    server_ = builder.BuildAndStart();
    ASSERT_TRUE(server_);
    ASSERT_GT(port_, 0);
  }
  void TearDown() override { server_->Shutdown(std::chrono::system_clock::now() + 1s); }

  RunOptions options(const std::string& function, unsigned clients, unsigned calls) {
    RunOptions o;
    o.target = *parseTarget("grpc://127.0.0.1:" + std::to_string(port_) + "/" + function);
    o.clients = clients;
    o.callsPerClient = calls;
    o.threads = 2;
    o.timeout = 2s;
    o.payload = "hi";
    return o;
  }

  EchoService service_;
  int port_ = 0;
  std::unique_ptr<grpc::Server> server_;
};

TEST_F(GrpcRun, EveryCallSucceeds) {
  auto result = runLoad(options("echo", 8, 20));
  ASSERT_TRUE(result) << result.error();
  const auto counts = countCalls(result->samples);
  EXPECT_EQ(counts.calls, 160u);
  EXPECT_EQ(counts.successes, 160u);
  EXPECT_EQ(service_.calls.load(), 160);
}

TEST_F(GrpcRun, NotFoundIsAFailure) {
  auto result = runLoad(options("nosuch", 1, 3));
  ASSERT_TRUE(result) << result.error();
  EXPECT_EQ(countCalls(result->samples).successes, 0u);
  EXPECT_NE(result->firstError.find("no such function"), std::string::npos) << result->firstError;
}

TEST_F(GrpcRun, NoAnswerFailsAtTheDeadline) {
  auto o = options("slow", 2, 2);
  o.timeout = 150ms;
  auto result = runLoad(o);
  ASSERT_TRUE(result) << result.error();
  EXPECT_EQ(countCalls(result->samples).calls, 4u);
  EXPECT_EQ(countCalls(result->samples).successes, 0u);
  // gRPC's server keeps the deadline too (grpc-timeout): whichever side
  // ends the call first, it fails no sooner.
  for (const auto& s : result->samples) EXPECT_GE(s.latencyUs, 140'000);
}

TEST_F(GrpcRun, ErrorMessagesArePercentDecoded) {
  auto result = runLoad(options("garbled", 1, 2));
  ASSERT_TRUE(result) << result.error();
  const auto counts = countCalls(result->samples);
  EXPECT_EQ(counts.successes, 0u);
  EXPECT_EQ(counts.errorReplies, 2u);
  EXPECT_EQ(result->firstError, "gRPC status 13: " + std::string(kGarbledReason));
}

TEST_F(GrpcRun, ClientsShareFewerConnectionsThanThreads) {
  auto o = options("echo", 6, 10);
  o.threads = 3;
  o.grpcChannels = 1;  // still one per thread: a connection serves one loop
  auto result = runLoad(o);
  ASSERT_TRUE(result) << result.error();
  EXPECT_EQ(countCalls(result->samples).successes, 60u);
}

// Listening but never accepting: the kernel completes the handshake and
// takes the request, and no answer ever comes.
TEST(GrpcDeadline, NoAnswerIsTheClientsOwnDeadline) {
  asio::io_context io;
  asio::ip::tcp::acceptor silent(io, {asio::ip::make_address("127.0.0.1"), 0});
  RunOptions o;
  o.target = *parseTarget("grpc://127.0.0.1:" + std::to_string(silent.local_endpoint().port()) + "/echo");
  o.clients = 2;
  o.callsPerClient = 2;
  o.timeout = 150ms;
  auto result = runLoad(o);
  ASSERT_TRUE(result) << result.error();
  EXPECT_EQ(countCalls(result->samples).calls, 4u);
  for (const auto& s : result->samples) {
    EXPECT_GE(s.latencyUs, 140'000);
    EXPECT_FALSE(s.answered);
  }
  EXPECT_NE(result->firstError.find("deadline exceeded"), std::string::npos) << result->firstError;
}

TEST(GrpcRefused, RefusedConnectionsAreNoAnswer) {
  std::uint16_t port = 0;
  {  // bound and closed: a port nobody listens on
    asio::io_context io;
    asio::ip::tcp::acceptor probe(io, {asio::ip::make_address("127.0.0.1"), 0});
    port = probe.local_endpoint().port();
  }
  RunOptions o;
  o.target = *parseTarget("grpc://127.0.0.1:" + std::to_string(port) + "/echo");
  o.clients = 2;
  o.callsPerClient = 3;
  auto result = runLoad(o);
  ASSERT_TRUE(result) << result.error();
  const auto counts = countCalls(result->samples);
  EXPECT_EQ(counts.calls, 6u);
  EXPECT_EQ(counts.noReply(), 6u);
  EXPECT_LT(result->wallSeconds, 1.0);
  EXPECT_NE(result->firstError.find("connect"), std::string::npos) << result->firstError;
}

}  // namespace
}  // namespace tinyfaas::bench
