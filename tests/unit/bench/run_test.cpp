// runLoad end to end against the in-test servers: counts, timeouts and the
// protocol paths a real server can take.

#include "run.hpp"
#include "fake_servers.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <thread>

namespace tinyfaas::bench {
namespace {

using testing::FakeCoapServer;
using testing::FakeHttpServer;
using namespace std::chrono_literals;

RunOptions optionsFor(const std::string& url, unsigned clients, unsigned calls) {
  RunOptions options;
  auto target = parseTarget(url);
  EXPECT_TRUE(target) << url;
  if (target) options.target = *target;
  options.clients = clients;
  options.callsPerClient = calls;
  options.threads = 2;
  options.timeout = 2s;
  options.maxDuration = 30s;
  return options;
}

Counts run(const RunOptions& options, RunResult* out = nullptr) {
  auto result = runLoad(options);
  EXPECT_TRUE(result) << (result ? "" : result.error());
  if (!result) return {};
  if (out) *out = *result;
  return countCalls(result->samples);
}

TEST(HttpRun, EveryCallSucceedsOnOneConnectionPerClient) {
  FakeHttpServer server(FakeHttpServer::Mode::answer);
  auto options = optionsFor("http://127.0.0.1:" + std::to_string(server.port()) + "/fn", 4, 25);
  options.payload = "hello";
  RunResult result;
  const auto counts = run(options, &result);
  EXPECT_EQ(counts.calls, 100u);
  EXPECT_EQ(counts.successes, 100u);
  EXPECT_EQ(server.requests(), 100u);
  EXPECT_EQ(server.connections(), 4u);
  EXPECT_FALSE(result.stoppedByMaxDuration);
  EXPECT_TRUE(result.firstError.empty()) << result.firstError;
  // Samples are complete and in order per client.
  ASSERT_EQ(result.samples.size(), 100u);
  for (std::size_t i = 0; i < result.samples.size(); ++i) {
    EXPECT_EQ(result.samples[i].client, i / 25);
    EXPECT_EQ(result.samples[i].seq, i % 25);
  }
}

TEST(HttpRun, ReconnectsWhenTheServerClosesAfterEachAnswer) {
  FakeHttpServer server(FakeHttpServer::Mode::answerAndClose);
  const auto counts = run(optionsFor("http://127.0.0.1:" + std::to_string(server.port()) + "/fn", 2, 10));
  EXPECT_EQ(counts.calls, 20u);
  EXPECT_EQ(counts.successes, 20u);
  EXPECT_EQ(server.connections(), 20u);
}

TEST(HttpRun, ErrorStatusIsAFailure) {
  FakeHttpServer server(FakeHttpServer::Mode::status500);
  RunResult result;
  const auto counts = run(optionsFor("http://127.0.0.1:" + std::to_string(server.port()) + "/fn", 1, 5), &result);
  EXPECT_EQ(counts.calls, 5u);
  EXPECT_EQ(counts.successes, 0u);
  EXPECT_EQ(counts.errorReplies, 5u);
  EXPECT_EQ(result.firstError, "status 500");
}

TEST(HttpRun, ServerThatNeverAnswersFailsEveryCallAfterTheTimeout) {
  FakeHttpServer server(FakeHttpServer::Mode::never);
  auto options = optionsFor("http://127.0.0.1:" + std::to_string(server.port()) + "/fn", 3, 2);
  options.timeout = 150ms;
  RunResult result;
  const auto counts = run(options, &result);
  EXPECT_EQ(counts.calls, 6u);
  EXPECT_EQ(counts.successes, 0u);
  EXPECT_EQ(counts.noReply(), 6u);
  for (const auto& s : result.samples) {
    EXPECT_GE(s.latencyUs, 150'000);
    EXPECT_LT(s.latencyUs, 1'500'000);
  }
  // Two calls of 150 ms each, one after another, per client.
  EXPECT_GE(result.wallSeconds, 0.3);
}

TEST(HttpRun, RefusedConnectionsFailFast) {
  // Bind and close to find a port nobody listens on.
  std::uint16_t port = 0;
  {
    FakeHttpServer probe(FakeHttpServer::Mode::answer);
    port = probe.port();
  }
  RunResult result;
  const auto counts = run(optionsFor("http://127.0.0.1:" + std::to_string(port) + "/fn", 2, 3), &result);
  EXPECT_EQ(counts.calls, 6u);
  EXPECT_EQ(counts.successes, 0u);
  EXPECT_LT(result.wallSeconds, 1.0);
  EXPECT_NE(result.firstError.find("connect"), std::string::npos) << result.firstError;
}

TEST(HttpRun, MaxDurationStopsIssuingCalls) {
  FakeHttpServer server(FakeHttpServer::Mode::never);
  auto options = optionsFor("http://127.0.0.1:" + std::to_string(server.port()) + "/fn", 2, 1000);
  options.timeout = 100ms;
  options.maxDuration = 250ms;
  RunResult result;
  const auto counts = run(options, &result);
  EXPECT_TRUE(result.stoppedByMaxDuration);
  EXPECT_GE(counts.calls, 4u);  // calls started at 0, 100 and 200 ms per client
  EXPECT_LE(counts.calls, 8u);
  EXPECT_LT(result.wallSeconds, 1.0);
}

TEST(HttpRun, UnixSocketTarget) {
  const auto path = std::filesystem::temp_directory_path() / ("bench-test-" + std::to_string(::getpid()) + ".sock");
  {
    FakeHttpServer server(FakeHttpServer::Mode::answer, path.string());
    const auto counts = run(optionsFor("http+unix://" + path.string() + ":/fn", 3, 10));
    EXPECT_EQ(counts.calls, 30u);
    EXPECT_EQ(counts.successes, 30u);
    EXPECT_EQ(server.connections(), 3u);
  }
  std::filesystem::remove(path);
}

TEST(CoapRun, PiggybackedAnswersOverConfirmableRequests) {
  FakeCoapServer server(FakeCoapServer::Mode::piggybacked);
  auto options = optionsFor("coap://127.0.0.1:" + std::to_string(server.port()) + "/a/fn", 4, 25);
  options.payload = "ping";
  const auto counts = run(options);
  EXPECT_EQ(counts.calls, 100u);
  EXPECT_EQ(counts.successes, 100u);
  EXPECT_EQ(server.requests(), 100u);
  EXPECT_EQ(server.lastPath(), "a/fn");
  EXPECT_EQ(server.lastPayload(), "ping");
}

TEST(CoapRun, NonConfirmableRequests) {
  FakeCoapServer server(FakeCoapServer::Mode::piggybacked);
  auto options = optionsFor("coap://127.0.0.1:" + std::to_string(server.port()) + "/fn", 2, 10);
  options.coapNonConfirmable = true;
  const auto counts = run(options);
  EXPECT_EQ(counts.successes, 20u);
}

TEST(CoapRun, SeparateResponseAfterAnEmptyAckIsAcknowledged) {
  FakeCoapServer server(FakeCoapServer::Mode::separate);
  const auto counts = run(optionsFor("coap://127.0.0.1:" + std::to_string(server.port()) + "/fn", 2, 10));
  EXPECT_EQ(counts.calls, 20u);
  EXPECT_EQ(counts.successes, 20u);
  // The ACK of the last call may still be on its way when runLoad returns.
  for (int i = 0; i < 200 && server.acksReceived() < 20; ++i) std::this_thread::sleep_for(5ms);
  EXPECT_EQ(server.acksReceived(), 20u);
}

TEST(CoapRun, ErrorCodeIsAFailure) {
  FakeCoapServer server(FakeCoapServer::Mode::notFound);
  RunResult result;
  const auto counts = run(optionsFor("coap://127.0.0.1:" + std::to_string(server.port()) + "/fn", 1, 3), &result);
  EXPECT_EQ(counts.calls, 3u);
  EXPECT_EQ(counts.successes, 0u);
  EXPECT_EQ(result.firstError, "CoAP code 4.04");
}

TEST(CoapRun, SilentServerFailsAfterTheTimeout) {
  FakeCoapServer server(FakeCoapServer::Mode::silent);
  auto options = optionsFor("coap://127.0.0.1:" + std::to_string(server.port()) + "/fn", 2, 2);
  options.timeout = 100ms;
  RunResult result;
  const auto counts = run(options, &result);
  EXPECT_EQ(counts.calls, 4u);
  EXPECT_EQ(counts.successes, 0u);
  for (const auto& s : result.samples) EXPECT_GE(s.latencyUs, 100'000);
}

TEST(Run, RejectsZeroClients) {
  auto options = optionsFor("http://127.0.0.1:1/fn", 0, 1);
  EXPECT_FALSE(runLoad(options));
}

}  // namespace
}  // namespace tinyfaas::bench
