// The gRPC frontend against gRPC's own C++ client (the generated stub), with
// a fake Invoker on an io_context thread standing in for the data plane.
// Everything binds 127.0.0.1 port 0; every wait is bounded.

#include "frontend/grpc/grpc_frontend.hpp"

#include <poll.h>

#include <array>
#include <atomic>
#include <chrono>
#include <future>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include "fake_invoker.hpp"
#include "test_support.hpp"
#include "tinyfaas.grpc.pb.h"

namespace tinyfaas {
namespace {

namespace asio = boost::asio;
namespace pb = openfogstack::tinyfaas::tinyfaas;
using namespace std::chrono_literals;
using test::answers;
using test::Behaviour;
using test::echoes;
using test::FakeInvoker;
using test::gated;

struct Reply {
  grpc::Status status;
  std::string response;
};

class GrpcFrontendTest : public ::testing::Test {
 protected:
  void SetUp() override {
    thread_ = std::thread([this] { ioc_.run(); });
    invoker_ = std::make_unique<FakeInvoker>();
    invoker_->expectThread(thread_.get_id());
    invoker_->set("echo", echoes());
    invoker_->set("hello", answers(CallStatus::ok, "hello world"));
    invoker_->set("slow", gated("slow done"));
  }

  void TearDown() override {
    onLoop([this] { invoker_->openGates(); });
    frontend_.reset();
    work_.reset();
    thread_.join();
    EXPECT_FALSE(invoker_->ranOffThread()) << "the Invoker was used off the data-plane thread";
  }

  void start(GrpcOptions options = {}) {
    options.address = "127.0.0.1";
    options.port = 0;
    auto created = GrpcFrontend::create(ioc_.get_executor(), *invoker_, options);
    ASSERT_TRUE(created) << created.error();
    frontend_ = std::move(*created);
    ASSERT_NE(frontend_->port(), 0);
    channel_ =
        grpc::CreateChannel("127.0.0.1:" + std::to_string(frontend_->port()), grpc::InsecureChannelCredentials());
    stub_ = pb::TinyFaaS::NewStub(channel_);
  }

  // Runs f on the loop thread and waits for it.
  template <typename F>
  void onLoop(F&& f) {
    std::promise<void> done;
    asio::post(ioc_, [&] {
      f();
      done.set_value();
    });
    ASSERT_EQ(done.get_future().wait_for(10s), std::future_status::ready);
  }

  std::size_t waitingOnLoop() {
    std::size_t n = 0;
    onLoop([&] { n = invoker_->waiting(); });
    return n;
  }

  // Until `n` gated calls are waiting in the fake (bounded).
  void awaitGated(std::size_t n) {
    ASSERT_TRUE(test::eventually([&] { return waitingOnLoop() >= n; }, 10s)) << "gated calls never arrived";
  }

  Reply call(const std::string& function, const std::string& data,
             const std::vector<std::pair<std::string, std::string>>& metadata = {},
             std::chrono::milliseconds deadline = 10s, pb::TinyFaaS::Stub* stub = nullptr) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + deadline);
    for (const auto& [key, value] : metadata) context.AddMetadata(key, value);
    pb::Data request;
    request.set_functionidentifier(function);
    request.set_data(data);
    pb::Response response;
    Reply reply;
    reply.status = (stub != nullptr ? stub : stub_.get())->Request(&context, request, &response);
    reply.response = response.response();
    return reply;
  }

  std::future<Reply> callAsync(const std::string& function, const std::string& data,
                               std::chrono::milliseconds deadline = 20s) {
    return std::async(std::launch::async,
                      [this, function, data, deadline] { return call(function, data, {}, deadline); });
  }

  asio::io_context ioc_{1};
  asio::executor_work_guard<asio::io_context::executor_type> work_ = asio::make_work_guard(ioc_);
  std::thread thread_;
  std::unique_ptr<FakeInvoker> invoker_;
  std::unique_ptr<GrpcFrontend> frontend_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<pb::TinyFaaS::Stub> stub_;
};

TEST_F(GrpcFrontendTest, AnswersOkWithTheFunctionsOutput) {
  start();
  Reply reply = call("hello", "");
  ASSERT_TRUE(reply.status.ok()) << reply.status.error_message();
  EXPECT_EQ(reply.response, "hello world");

  reply = call("echo", "some input \xC3\xA4");
  ASSERT_TRUE(reply.status.ok()) << reply.status.error_message();
  EXPECT_EQ(reply.response, "some input \xC3\xA4");

  const auto invocations = invoker_->invocations();
  ASSERT_EQ(invocations.size(), 2u);
  EXPECT_EQ(invocations[0].function, "hello");
  EXPECT_EQ(invocations[0].payload, "");
  EXPECT_EQ(invocations[1].function, "echo");
  EXPECT_EQ(invocations[1].payload, "some input \xC3\xA4");
}

TEST_F(GrpcFrontendTest, EmptyOutputIsAnEmptyResponse) {
  invoker_->set("quiet", answers(CallStatus::ok, ""));
  start();
  Reply reply = call("quiet", "x");
  ASSERT_TRUE(reply.status.ok()) << reply.status.error_message();
  EXPECT_EQ(reply.response, "");
}

struct Mapping {
  CallStatus status;
  grpc::StatusCode code;
};

class GrpcStatusMappingTest : public GrpcFrontendTest, public ::testing::WithParamInterface<Mapping> {};

TEST_P(GrpcStatusMappingTest, MapsTheCallStatus) {
  invoker_->set("fn", answers(GetParam().status, "reason for it"));
  start();
  Reply reply = call("fn", "in");
  EXPECT_EQ(reply.status.error_code(), GetParam().code) << reply.status.error_message();
  EXPECT_EQ(reply.status.error_message(), "reason for it");
  EXPECT_EQ(reply.response, "");
}

INSTANTIATE_TEST_SUITE_P(AllStatuses, GrpcStatusMappingTest,
                         ::testing::Values(Mapping{CallStatus::functionError, grpc::StatusCode::INTERNAL},
                                           Mapping{CallStatus::unavailable, grpc::StatusCode::UNAVAILABLE},
                                           Mapping{CallStatus::timeout, grpc::StatusCode::DEADLINE_EXCEEDED},
                                           Mapping{CallStatus::overloaded, grpc::StatusCode::RESOURCE_EXHAUSTED},
                                           Mapping{CallStatus::payloadTooLarge, grpc::StatusCode::RESOURCE_EXHAUSTED}),
                         [](const ::testing::TestParamInfo<Mapping>& info) {
                           std::string name(toString(info.param.status));
                           std::erase(name, ' ');
                           return name;
                         });

// A status the function chose: 2xx is its output, others a gRPC status with
// the body as the message, even when the call itself went fine.
TEST_F(GrpcFrontendTest, TheFunctionsStatusMapsToAGrpcStatus) {
  const std::pair<unsigned, grpc::StatusCode> cases[] = {{201, grpc::StatusCode::OK},
                                                         {400, grpc::StatusCode::INVALID_ARGUMENT},
                                                         {404, grpc::StatusCode::NOT_FOUND},
                                                         {418, grpc::StatusCode::FAILED_PRECONDITION},
                                                         {429, grpc::StatusCode::RESOURCE_EXHAUSTED},
                                                         {503, grpc::StatusCode::UNAVAILABLE},
                                                         {507, grpc::StatusCode::INTERNAL},
                                                         {302, grpc::StatusCode::UNKNOWN}};
  for (const auto& [code, expected] : cases) {
    Behaviour b = answers(code < 500 ? CallStatus::ok : CallStatus::functionError, "body " + std::to_string(code));
    b.result.code = code;
    invoker_->set("f" + std::to_string(code), b);
  }
  start();
  for (const auto& [code, expected] : cases) {
    Reply reply = call("f" + std::to_string(code), "");
    EXPECT_EQ(reply.status.error_code(), expected) << code;
    if (expected == grpc::StatusCode::OK) {
      EXPECT_EQ(reply.response, "body " + std::to_string(code));
    } else {
      EXPECT_EQ(reply.status.error_message(), "body " + std::to_string(code));
    }
  }
}

TEST_F(GrpcFrontendTest, UnknownFunctionIsNotFound) {
  start();
  Reply reply = call("nosuchfunction", "x");
  EXPECT_EQ(reply.status.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(reply.status.error_message(), "function nosuchfunction not found");
  EXPECT_EQ(invoker_->invocations().size(), 1u);
}

TEST_F(GrpcFrontendTest, InvalidNamesAreNotFoundWithoutCallingTheInvoker) {
  start();
  for (const std::string& name : {std::string(), std::string("trailing-dash-"), std::string("../etc"),
                                  std::string("sp ace"), std::string(65, 'a'), std::string("caf\xC3\xA9")}) {
    Reply reply = call(name, "x");
    EXPECT_EQ(reply.status.error_code(), grpc::StatusCode::NOT_FOUND) << name;
    EXPECT_TRUE(reply.status.error_message().starts_with("function ")) << reply.status.error_message();
    EXPECT_TRUE(reply.status.error_message().ends_with(" not found")) << reply.status.error_message();
  }
  // The quoted name is capped.
  Reply reply = call(std::string(5000, 'b') + "-", "x");
  EXPECT_EQ(reply.status.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_LT(reply.status.error_message().size(), 200u);
  EXPECT_TRUE(invoker_->invocations().empty());
}

TEST_F(GrpcFrontendTest, ForwardsMetadataWithCanonicalNames) {
  start();
  // A separate channel with a user-agent prefix, as grpc-python sends
  // "grpc-python/..." before the core's own part.
  grpc::ChannelArguments arguments;
  arguments.SetUserAgentPrefix("tinyfaas-test/1");
  auto channel = grpc::CreateCustomChannel("127.0.0.1:" + std::to_string(frontend_->port()),
                                           grpc::InsecureChannelCredentials(), arguments);
  auto stub = pb::TinyFaaS::NewStub(channel);

  Reply reply =
      call("echo", "x", {{"lab", "x"}, {"x-custom-thing", "z"}, {"trace-bin", std::string("\x00\x01\xFF", 3)}}, 10s,
           stub.get());
  ASSERT_TRUE(reply.status.ok()) << reply.status.error_message();

  const auto invocations = invoker_->invocations();
  ASSERT_EQ(invocations.size(), 1u);
  std::map<std::string, std::string> headers;
  for (const auto& [name, value] : invocations[0].headers) headers[name] = value;
  EXPECT_EQ(headers["Lab"], "x");
  EXPECT_EQ(headers["X-Custom-Thing"], "z");
  ASSERT_TRUE(headers.contains("User-Agent"));
  EXPECT_TRUE(headers["User-Agent"].starts_with("tinyfaas-test/1 grpc-c++/")) << headers["User-Agent"];
  for (const auto& [name, value] : headers) {
    EXPECT_FALSE(name.starts_with(":")) << name;
    EXPECT_FALSE(name.starts_with("Grpc-")) << name;
    EXPECT_FALSE(name.ends_with("-Bin")) << name;
    EXPECT_NE(name, "Content-Type");
    EXPECT_NE(name, "Te");
    EXPECT_NE(name, "");
  }
}

TEST_F(GrpcFrontendTest, ASlowCallDoesNotBlockFastOnes) {
  start();
  auto slow = callAsync("slow", "s");
  awaitGated(1);
  // Many fast calls complete while the slow one is still waiting.
  for (int i = 0; i < 20; ++i) {
    Reply reply = call("hello", "", {}, 5s);
    ASSERT_TRUE(reply.status.ok()) << reply.status.error_message();
  }
  EXPECT_EQ(slow.wait_for(0s), std::future_status::timeout);
  onLoop([this] { invoker_->openGates(); });
  ASSERT_EQ(slow.wait_for(10s), std::future_status::ready);
  Reply reply = slow.get();
  ASSERT_TRUE(reply.status.ok()) << reply.status.error_message();
  EXPECT_EQ(reply.response, "slow done");
}

TEST_F(GrpcFrontendTest, ManyConcurrentCallsAreAllAnswered) {
  start();
  constexpr int kCalls = 64;
  std::vector<std::future<Reply>> slow;
  for (int i = 0; i < kCalls; ++i) slow.push_back(callAsync("slow", std::to_string(i)));
  awaitGated(kCalls);
  onLoop([this] { invoker_->openGates(); });
  for (auto& f : slow) {
    ASSERT_EQ(f.wait_for(10s), std::future_status::ready);
    Reply reply = f.get();
    EXPECT_TRUE(reply.status.ok()) << reply.status.error_message();
    EXPECT_EQ(reply.response, "slow done");
  }
}

TEST_F(GrpcFrontendTest, OversizeRequestIsResourceExhaustedBeforeTheInvoker) {
  GrpcOptions options;
  options.limits.maxMessageBytes = 1024;
  start(options);
  Reply reply = call("echo", std::string(900, 'a'));
  ASSERT_TRUE(reply.status.ok()) << reply.status.error_message();
  EXPECT_EQ(reply.response.size(), 900u);

  reply = call("echo", std::string(2000, 'a'));
  EXPECT_EQ(reply.status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << reply.status.error_message();
  EXPECT_EQ(invoker_->invocations().size(), 1u);
  // The connection and the endpoint stay usable.
  reply = call("hello", "");
  EXPECT_TRUE(reply.status.ok()) << reply.status.error_message();
}

TEST_F(GrpcFrontendTest, OversizeResponseIsResourceExhausted) {
  invoker_->set("big", answers(CallStatus::ok, std::string(4096, 'b')));
  GrpcOptions options;
  options.limits.maxMessageBytes = 1024;
  start(options);
  Reply reply = call("big", "");
  EXPECT_EQ(reply.status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << reply.status.error_message();
  reply = call("hello", "");
  EXPECT_TRUE(reply.status.ok()) << reply.status.error_message();
}

TEST_F(GrpcFrontendTest, OutputThatIsNotUtf8IsInternal) {
  invoker_->set("binary", answers(CallStatus::ok, std::string("\xFF\xFE\x00\x80", 4)));
  invoker_->set("surrogate", answers(CallStatus::ok, "\xED\xA0\x80"));
  invoker_->set("overlong", answers(CallStatus::ok, "\xC0\xAF"));
  invoker_->set("emoji", answers(CallStatus::ok, "\xF0\x9F\x98\x80"));
  start();
  for (const char* name : {"binary", "surrogate", "overlong"}) {
    Reply reply = call(name, "");
    EXPECT_EQ(reply.status.error_code(), grpc::StatusCode::INTERNAL) << name;
    EXPECT_NE(reply.status.error_message().find("UTF-8"), std::string::npos) << reply.status.error_message();
  }
  Reply reply = call("emoji", "");
  ASSERT_TRUE(reply.status.ok()) << reply.status.error_message();
  EXPECT_EQ(reply.response, "\xF0\x9F\x98\x80");
}

TEST_F(GrpcFrontendTest, LongReasonsAreCapped) {
  invoker_->set("verbose", answers(CallStatus::functionError, std::string(100000, 'r')));
  start();
  Reply reply = call("verbose", "");
  EXPECT_EQ(reply.status.error_code(), grpc::StatusCode::INTERNAL);
  EXPECT_GT(reply.status.error_message().size(), 0u);
  EXPECT_LE(reply.status.error_message().size(), 1024u);
}

TEST_F(GrpcFrontendTest, RequestProtobufCannotParseIsInvalidArgument) {
  start();
  // Field 2 (data) holding invalid UTF-8: protobuf refuses to parse it.
  const std::string bytes = std::string("\x0A\x04") + "echo" + std::string("\x12\x02\xFF\xFE", 4);
  grpc::GenericStub generic(channel_);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + 10s);
  grpc::Slice slice(bytes);
  grpc::ByteBuffer request(&slice, 1);
  grpc::ByteBuffer response;
  std::promise<grpc::Status> done;
  generic.UnaryCall(&context, "/openfogstack.tinyfaas.tinyfaas.TinyFaaS/Request", grpc::StubOptions(), &request,
                    &response, [&](grpc::Status status) { done.set_value(status); });
  auto future = done.get_future();
  ASSERT_EQ(future.wait_for(10s), std::future_status::ready);
  const grpc::Status status = future.get();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << status.error_message();
  EXPECT_NE(status.error_message().find("UTF-8"), std::string::npos) << status.error_message();
  EXPECT_TRUE(invoker_->invocations().empty());
  EXPECT_TRUE(call("hello", "").status.ok());
}

TEST_F(GrpcFrontendTest, CallsBeyondMaxInFlightAreResourceExhausted) {
  GrpcOptions options;
  options.limits.maxInFlight = 2;
  start(options);
  auto first = callAsync("slow", "1");
  auto second = callAsync("slow", "2");
  awaitGated(2);
  Reply reply = call("hello", "");
  EXPECT_EQ(reply.status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_EQ(reply.status.error_message(), "too many calls in flight");
  onLoop([this] { invoker_->openGates(); });
  ASSERT_EQ(first.wait_for(10s), std::future_status::ready);
  ASSERT_EQ(second.wait_for(10s), std::future_status::ready);
  EXPECT_TRUE(first.get().status.ok());
  EXPECT_TRUE(second.get().status.ok());
  // Finished calls free their slots.
  EXPECT_TRUE(call("hello", "").status.ok());
}

TEST_F(GrpcFrontendTest, ACallWhoseClientGaveUpKeepsItsSlotUntilTheFunctionReturns) {
  GrpcOptions options;
  options.limits.maxInFlight = 1;
  start(options);
  // The client's deadline resets the stream; the function runs on.
  Reply gaveUp = call("slow", "1", {}, 200ms);
  EXPECT_EQ(gaveUp.status.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  awaitGated(1);
  // Otherwise a client could start any number of calls by resetting each.
  Reply refused = call("hello", "");
  EXPECT_EQ(refused.status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  std::size_t inFlight = 1;
  onLoop([&] { inFlight = frontend_->callsInFlight(); });
  EXPECT_EQ(inFlight, 0u) << "nobody waits for the reset call's answer";
  onLoop([this] { invoker_->openGates(); });
  ASSERT_TRUE(test::eventually([&] { return invoker_->completed() >= 1; }, 10s));
  EXPECT_TRUE(test::eventually([&] { return call("hello", "").status.ok(); }, 10s));
}

TEST_F(GrpcFrontendTest, CallsBeyondTheByteBudgetAreResourceExhausted) {
  GrpcOptions options;
  options.limits.maxInFlightBytes = 10;
  start(options);
  auto first = callAsync("slow", "123456");
  awaitGated(1);
  // 6 bytes held: 5 more would pass the budget, 4 fit.
  Reply reply = call("echo", "12345");
  EXPECT_EQ(reply.status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_EQ(reply.status.error_message(), "too many bytes in calls in flight");
  EXPECT_TRUE(call("echo", "1234").status.ok());
  onLoop([this] { invoker_->openGates(); });
  ASSERT_EQ(first.wait_for(10s), std::future_status::ready);
  EXPECT_TRUE(first.get().status.ok());
  // Finished calls give their bytes back.
  EXPECT_TRUE(call("echo", "1234567890").status.ok());
}

// A channel with a TCP connection of its own.
std::shared_ptr<grpc::Channel> ownConnection(std::uint16_t port) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  return grpc::CreateCustomChannel("127.0.0.1:" + std::to_string(port), grpc::InsecureChannelCredentials(), args);
}

// A raw TCP client: writes `bytes`, then reads until the server closes.
// True if it closed within `limit`.
bool closedWithin(std::uint16_t port, const std::string& bytes, std::chrono::milliseconds limit) {
  asio::io_context io;
  asio::ip::tcp::socket socket(io);
  socket.connect({asio::ip::make_address("127.0.0.1"), port});
  asio::write(socket, asio::buffer(bytes));
  const auto deadline = std::chrono::steady_clock::now() + limit;
  std::array<char, 4096> buffer{};
  while (std::chrono::steady_clock::now() < deadline) {
    pollfd readable{socket.native_handle(), POLLIN, 0};
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (::poll(&readable, 1, static_cast<int>(std::max<std::int64_t>(left.count(), 1))) <= 0) continue;
    boost::system::error_code ec;
    socket.read_some(asio::buffer(buffer), ec);
    if (ec) return true;  // EOF or reset: closed
  }
  return false;
}

// A request's HEADERS frame without END_STREAM: the request's message is
// still to come. `padding` adds that many 100-byte headers.
std::string h2Headers(std::uint32_t stream, int padding = 0) {
  std::vector<std::pair<std::string, std::string>> headers{
      {":method", "POST"},
      {":scheme", "http"},
      {":authority", "x"},
      {":path", "/openfogstack.tinyfaas.tinyfaas.TinyFaaS/Request"},
      {"content-type", "application/grpc"}};
  for (int i = 0; i < padding; ++i) headers.emplace_back("x-pad-" + std::to_string(i), std::string(100, 'p'));
  // HPACK literals without indexing, no Huffman (every length below 127).
  std::string block;
  for (const auto& [name, value] : headers) {
    block += '\0';
    block += static_cast<char>(name.size());
    block += name;
    block += static_cast<char>(value.size());
    block += value;
  }
  std::string frame;
  for (int shift = 16; shift >= 0; shift -= 8) frame += static_cast<char>((block.size() >> shift) & 0xFF);
  frame += "\x01\x04";  // HEADERS, END_HEADERS
  for (int shift = 24; shift >= 0; shift -= 8) frame += static_cast<char>((stream >> shift) & 0xFF);
  return frame + block;
}

const std::string kClientPreface =
    "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + std::string("\0\0\0\x04\0\0\0\0\0", 9);  // + empty SETTINGS

TEST_F(GrpcFrontendTest, AConnectionThatStallsBeforeItsPrefaceOrMidRequestIsClosed) {
  GrpcOptions options;
  options.limits.stallTimeout = 200ms;
  start(options);
  const std::string& preface = kClientPreface;
  EXPECT_TRUE(closedWithin(frontend_->port(), "", 5s)) << "silent connection";
  EXPECT_TRUE(closedWithin(frontend_->port(), preface.substr(0, 10), 5s)) << "half a preface";
  EXPECT_TRUE(closedWithin(frontend_->port(), preface + h2Headers(1), 5s)) << "a request without its message";
  EXPECT_TRUE(invoker_->invocations().empty());
}

TEST_F(GrpcFrontendTest, RequestsStillArrivingHoldTheByteBudgetWithTheirHeaders) {
  GrpcOptions options;
  options.limits.maxMessageBytes = 1024;
  options.limits.maxInFlightBytes = 4096;
  start(options);
  // A client that opens streams with large headers and never sends their
  // messages: without a bound, 1024 streams per connection times 1024
  // connections of 16 KiB headers each.
  asio::io_context io;
  asio::ip::tcp::socket hog(io);
  hog.connect({asio::ip::make_address("127.0.0.1"), frontend_->port()});
  std::string streams = kClientPreface;
  for (std::uint32_t id = 1; id < 2 * 20; id += 2) streams += h2Headers(id, 10);
  asio::write(hog, asio::buffer(streams));
  ASSERT_TRUE(test::eventually(
      [&] { return call("echo", "x").status.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED; }, 10s));
  EXPECT_TRUE(invoker_->invocations().empty());
  // Its connection gone, what it held is free again.
  hog.close();
  EXPECT_TRUE(test::eventually([&] { return call("echo", "x").status.ok(); }, 10s));
}

TEST_F(GrpcFrontendTest, AnIdleConnectionWithNoRequestUnderWayStaysOpen) {
  GrpcOptions options;
  options.limits.stallTimeout = 100ms;
  start(options);
  ASSERT_TRUE(call("hello", "").status.ok());
  ASSERT_EQ(channel_->GetState(false), GRPC_CHANNEL_READY);
  // Absence over a window: three stall timeouts go by without a byte.
  std::this_thread::sleep_for(400ms);
  EXPECT_EQ(channel_->GetState(false), GRPC_CHANNEL_READY);
  EXPECT_TRUE(call("hello", "").status.ok());
}

TEST_F(GrpcFrontendTest, ConnectionsBeyondTheLimitAreClosedAndTheOpenOnesServeOn) {
  GrpcOptions options;
  options.maxConnections = 2;
  start(options);
  ASSERT_TRUE(call("hello", "").status.ok());
  auto second = ownConnection(frontend_->port());
  auto secondStub = pb::TinyFaaS::NewStub(second);
  ASSERT_TRUE(call("hello", "", {}, 10s, secondStub.get()).status.ok());
  {
    auto third = ownConnection(frontend_->port());
    auto thirdStub = pb::TinyFaaS::NewStub(third);
    Reply refused = call("hello", "", {}, 3s, thirdStub.get());
    EXPECT_EQ(refused.status.error_code(), grpc::StatusCode::UNAVAILABLE) << refused.status.error_message();
  }
  EXPECT_TRUE(call("hello", "").status.ok());
  // A connection that closes makes room for a new one.
  secondStub.reset();
  second.reset();
  bool served = false;
  for (int attempt = 0; attempt < 50 && !served; ++attempt) {
    auto fresh = ownConnection(frontend_->port());
    auto freshStub = pb::TinyFaaS::NewStub(fresh);
    served = call("hello", "", {}, 2s, freshStub.get()).status.ok();
  }
  EXPECT_TRUE(served);
}

TEST_F(GrpcFrontendTest, AClientDeadlineEndsTheCallAndTheLateResultIsDropped) {
  start();
  Reply reply = call("slow", "", {}, 300ms);
  EXPECT_EQ(reply.status.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  awaitGated(1);
  onLoop([this] { invoker_->openGates(); });
  ASSERT_TRUE(test::eventually([&] { return invoker_->completed() >= 1; }, 10s));
  EXPECT_EQ(invoker_->completed(), 1u);
  EXPECT_TRUE(call("hello", "").status.ok());
}

TEST_F(GrpcFrontendTest, StopOnTheDataPlaneAnswersPendingCallsUnavailable) {
  start();
  auto pending = callAsync("slow", "p");
  awaitGated(1);
  // The daemon stops frontends on the data-plane thread; the fake's result
  // can only arrive there, so stop() must not wait for it.
  onLoop([this] { frontend_->stop(); });
  ASSERT_EQ(pending.wait_for(10s), std::future_status::ready);
  Reply reply = pending.get();
  EXPECT_EQ(reply.status.error_code(), grpc::StatusCode::UNAVAILABLE) << reply.status.error_message();

  // The result arriving after the stop is dropped without harm.
  onLoop([this] { invoker_->openGates(); });
  ASSERT_TRUE(test::eventually([&] { return invoker_->completed() >= 1; }, 10s));
  EXPECT_EQ(invoker_->completed(), 1u);

  // Nothing listens any more.
  reply = call("hello", "", {}, 2s);
  EXPECT_FALSE(reply.status.ok());
  onLoop([this] { frontend_->stop(); });  // idempotent
}

TEST_F(GrpcFrontendTest, AfterStopAcceptingCallsInFlightFinishAndNewClientsAreRefused) {
  start();
  auto pending = callAsync("slow", "p");
  awaitGated(1);
  std::size_t inFlight = 0;
  onLoop([&] {
    frontend_->stopAccepting();
    inFlight = frontend_->callsInFlight();
  });
  EXPECT_EQ(inFlight, 1u);
  // A new client is refused: by the closed listener, or, racing with its
  // closing, by the frontend or by gRPC's shutdown.
  auto fresh = pb::TinyFaaS::NewStub(
      grpc::CreateChannel("127.0.0.1:" + std::to_string(frontend_->port()), grpc::InsecureChannelCredentials()));
  Reply refused = call("hello", "", {}, 2s, fresh.get());
  EXPECT_TRUE(refused.status.error_code() == grpc::StatusCode::UNAVAILABLE ||
              refused.status.error_code() == grpc::StatusCode::CANCELLED)
      << refused.status.error_code() << " " << refused.status.error_message();
  onLoop([this] { invoker_->openGates(); });
  ASSERT_EQ(pending.wait_for(10s), std::future_status::ready);
  Reply reply = pending.get();
  EXPECT_TRUE(reply.status.ok()) << reply.status.error_message();
  EXPECT_EQ(reply.response, "slow done");
  onLoop([&] { inFlight = frontend_->callsInFlight(); });
  EXPECT_EQ(inFlight, 0u);
  onLoop([this] { frontend_->stop(); });
}

TEST_F(GrpcFrontendTest, CutShortAnswersCallsInFlightUnavailable) {
  start();
  auto pending = callAsync("slow", "p");
  awaitGated(1);
  onLoop([this] {
    frontend_->stopAccepting();
    frontend_->cutShort("shutting down now");
  });
  ASSERT_EQ(pending.wait_for(10s), std::future_status::ready);
  Reply reply = pending.get();
  EXPECT_EQ(reply.status.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(reply.status.error_message(), "shutting down now");
  onLoop([this] { frontend_->stop(); });  // returns: nothing is left running
}

TEST_F(GrpcFrontendTest, DestroyingTheFrontendWithPendingCallsIsSafe) {
  start();
  std::vector<std::future<Reply>> pending;
  for (int i = 0; i < 8; ++i) pending.push_back(callAsync("slow", std::to_string(i)));
  awaitGated(8);
  onLoop([this] { frontend_.reset(); });
  for (auto& f : pending) {
    ASSERT_EQ(f.wait_for(10s), std::future_status::ready);
    EXPECT_EQ(f.get().status.error_code(), grpc::StatusCode::UNAVAILABLE);
  }
  onLoop([this] { invoker_->openGates(); });
}

TEST_F(GrpcFrontendTest, StopsWhileCallsKeepArriving) {
  start();
  std::atomic<bool> running{true};
  std::vector<std::thread> clients;
  std::atomic<int> answered{0};
  for (int t = 0; t < 4; ++t) {
    clients.emplace_back([&] {
      while (running) {
        Reply reply = call("hello", "", {}, 2s);
        if (reply.status.ok()) ++answered;
      }
    });
  }
  test::eventually([&] { return answered >= 20; }, 10s);
  onLoop([this] { frontend_->stop(); });
  running = false;
  for (auto& t : clients) t.join();
  EXPECT_GE(answered.load(), 20);
}

TEST(GrpcFrontendCreate, PortZeroBindsAFreePortAndATakenPortIsAnError) {
  asio::io_context ioc;
  FakeInvoker invoker;
  GrpcOptions options;
  options.address = "127.0.0.1";
  options.port = 0;
  auto first = GrpcFrontend::create(ioc.get_executor(), invoker, options);
  ASSERT_TRUE(first) << first.error();
  const std::uint16_t port = (*first)->port();
  ASSERT_NE(port, 0);

  options.port = port;
  auto second = GrpcFrontend::create(ioc.get_executor(), invoker, options);
  ASSERT_FALSE(second);
  EXPECT_NE(second.error().find("127.0.0.1:" + std::to_string(port)), std::string::npos) << second.error();
  EXPECT_NE(second.error().find("in use"), std::string::npos) << second.error();
}

TEST(GrpcFrontendCreate, AnInvalidAddressIsAnError) {
  asio::io_context ioc;
  FakeInvoker invoker;
  GrpcOptions options;
  options.address = "not-an-address";
  options.port = 0;
  auto created = GrpcFrontend::create(ioc.get_executor(), invoker, options);
  ASSERT_FALSE(created);
  EXPECT_NE(created.error().find("not-an-address"), std::string::npos) << created.error();
}

TEST(GrpcFrontendCreate, ListensOnIpv6Loopback) {
  asio::io_context ioc;
  FakeInvoker invoker;
  GrpcOptions options;
  options.address = "::1";
  options.port = 0;
  auto created = GrpcFrontend::create(ioc.get_executor(), invoker, options);
  if (!created && created.error().find("not available") != std::string::npos) GTEST_SKIP() << created.error();
  ASSERT_TRUE(created) << created.error();
  EXPECT_NE((*created)->port(), 0);
}

}  // namespace
}  // namespace tinyfaas
