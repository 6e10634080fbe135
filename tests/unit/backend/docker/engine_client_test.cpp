// The engine client against a fake engine: statuses, chunked bodies, body
// caps, timeouts, follow-streams cut at any byte, cancellation, uploads.

#include "backend/docker/engine_client.hpp"

#include <optional>

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

#include "backend/docker/log_demux.hpp"
#include "fake_engine.hpp"
#include "test_support.hpp"

namespace tinyfaas::test {
namespace {

namespace http = boost::beast::http;
using docker::EngineClient;
using docker::EngineResult;
using docker::RequestOptions;

class EngineClientTest : public ::testing::Test {
 protected:
  boost::asio::io_context io;
  TempDir dir;
  std::shared_ptr<FakeEngine> engine = FakeEngine::start(io.get_executor(), dir / "docker.sock");
  EngineClient client{io.get_executor(), dir / "docker.sock"};

  EngineResult request(http::verb method, std::string target, std::string body = {}, RequestOptions options = {}) {
    return run(io, client.request(method, std::move(target), std::move(body), std::move(options)));
  }
  void TearDown() override { engine->stop(); }
};

TEST_F(EngineClientTest, SendsVersionedTargetHostAndBody) {
  engine->answer(201, R"({"Id":"abc"})");
  auto r = request(http::verb::post, "/containers/create?name=x", R"({"Image":"i"})");
  ASSERT_TRUE(r) << r.error();
  EXPECT_EQ(r->status, 201u);
  EXPECT_EQ(r->body, R"({"Id":"abc"})");
  ASSERT_EQ(engine->requests().size(), 1u);
  const auto& seen = engine->requests()[0];
  EXPECT_EQ(seen.method, "POST");
  EXPECT_EQ(seen.target, "/v1.41/containers/create?name=x");
  EXPECT_EQ(seen.host, "docker");  // Go's server refuses HTTP/1.1 without Host
  EXPECT_EQ(seen.contentType, "application/json");
  EXPECT_EQ(seen.body, R"({"Image":"i"})");
}

TEST_F(EngineClientTest, StatusesAreResponsesNotErrors) {
  engine->answer(204, "");
  engine->answer(404, R"({"message":"No such container: abc"})");
  engine->answer(409, "plain text\nover two lines");
  auto removed = request(http::verb::delete_, "/containers/abc");
  ASSERT_TRUE(removed) << removed.error();
  EXPECT_TRUE(removed->is({204, 404, 409}));
  auto gone = request(http::verb::delete_, "/containers/abc");
  ASSERT_TRUE(gone);
  EXPECT_EQ(gone->status, 404u);
  EXPECT_TRUE(gone->is({204, 404}));
  EXPECT_FALSE(gone->is({204}));
  EXPECT_EQ(gone->message(), "No such container: abc");
  auto conflict = request(http::verb::delete_, "/containers/abc");
  ASSERT_TRUE(conflict);
  EXPECT_EQ(conflict->message(), "plain text over two lines");
}

TEST_F(EngineClientTest, ChunkedBodyCutAnywhereIsReassembled) {
  std::string raw = chunkedHeader(200, "application/json") + chunk(R"({"Status)") + chunk(R"(Code":0})") + "0\r\n\r\n";
  EngineExchange exchange;
  for (std::size_t i = 0; i < raw.size(); i += 3) exchange.pieces.push_back(raw.substr(i, 3));
  exchange.pause = std::chrono::milliseconds(1);
  engine->script(exchange);
  auto r = request(http::verb::post, "/containers/abc/wait");
  ASSERT_TRUE(r) << r.error();
  EXPECT_EQ(r->body, R"({"StatusCode":0})");
}

TEST_F(EngineClientTest, OversizedBodyIsCapped) {
  engine->answer(200, std::string(4096, 'x'));
  RequestOptions options;
  options.maxBodyBytes = 1024;
  auto r = request(http::verb::get, "/containers/json", {}, options);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().find("larger than 1024 bytes"), std::string::npos) << r.error();
}

TEST_F(EngineClientTest, OversizedChunkedBodyIsCapped) {
  EngineExchange exchange;
  exchange.pieces.push_back(chunkedHeader(200, "application/json"));
  for (int i = 0; i < 8; ++i) exchange.pieces.push_back(chunk(std::string(512, 'y')));
  exchange.pieces.push_back("0\r\n\r\n");
  engine->script(exchange);
  RequestOptions options;
  options.maxBodyBytes = 1024;
  auto r = request(http::verb::get, "/images/json", {}, options);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().find("larger than"), std::string::npos) << r.error();
}

TEST_F(EngineClientTest, SilentEngineTimesOut) {
  engine->script(EngineExchange{{}, {}, false, true});
  RequestOptions options;
  options.timeout = std::chrono::milliseconds(200);
  const auto started = std::chrono::steady_clock::now();
  auto r = request(http::verb::get, "/_ping", {}, options);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().find("did not answer GET /v1.41/_ping within 200 ms"), std::string::npos) << r.error();
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(5));
}

// Shutdown cuts an image import that would otherwise hold it up to the
// build timeout.
TEST_F(EngineClientTest, CloseAllEndsARequestInFlightAndRefusesLaterOnes) {
  engine->script(EngineExchange{{}, {}, false, true});
  RequestOptions options;
  options.timeout = std::chrono::minutes(15);
  std::optional<EngineResult> cut;
  boost::asio::co_spawn(io, client.request(http::verb::post, "/images/create?fromSrc=-", "tar", options),
                        [&cut](std::exception_ptr, EngineResult r) { cut = std::move(r); });
  ASSERT_TRUE(runUntil(io, [&] { return engine->requests().size() == 1; }));
  client.closeAll();
  ASSERT_TRUE(runUntil(
      io, [&] { return cut.has_value(); }, std::chrono::seconds(5)));
  ASSERT_FALSE(*cut);
  EXPECT_NE(cut->error().find("POST /v1.41/images/create?fromSrc=-: tinyFaaS is shutting down"), std::string::npos)
      << cut->error();

  auto later = request(http::verb::get, "/_ping");
  ASSERT_FALSE(later);
  EXPECT_NE(later.error().find("tinyFaaS is shutting down"), std::string::npos) << later.error();
  EXPECT_EQ(engine->requests().size(), 1u) << "a request after closeAll() reached the engine";
}

TEST_F(EngineClientTest, EngineNotRunningIsSaidPlainly) {
  EngineClient nowhere(io.get_executor(), dir / "missing.sock");
  auto r = run(io, nowhere.request(http::verb::get, "/_ping"));
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().find("the Docker engine is not running"), std::string::npos) << r.error();
  EXPECT_NE(r.error().find((dir / "missing.sock").string()), std::string::npos) << r.error();
}

// A follow-stream of multiplexed log frames, cut at every byte boundary in
// turn: the lines come out whole, in order, on the right stream.
TEST_F(EngineClientTest, LogFramesSplitAcrossReads) {
  const std::string frames = logFrame(1, "first line\nsecond ") + logFrame(2, "an error\n") + logFrame(1, "line\n") +
                             logFrame(1, "") + logFrame(2, "no newline at the end");
  std::string body =
      chunk(frames.substr(0, 11)) + chunk(frames.substr(11, 20)) + chunk(frames.substr(31)) + "0\r\n\r\n";
  std::string raw = chunkedHeader(200, "application/vnd.docker.raw-stream") + body;
  EngineExchange exchange;
  for (std::size_t i = 0; i < raw.size(); i += 5) exchange.pieces.push_back(raw.substr(i, 5));
  exchange.pause = std::chrono::milliseconds(1);
  engine->script(exchange);

  std::vector<std::pair<int, std::string>> lines;
  docker::LogDemuxer demux(docker::LogDemuxer::Framing::multiplexed,
                           [&](int stream, std::string_view line) { lines.emplace_back(stream, line); });
  auto r = run(io, client.stream(
                       http::verb::get, "/containers/abc/logs?follow=1",
                       [&](std::string_view bytes) { EXPECT_TRUE(demux.feed(bytes)); }, RequestOptions{}, nullptr));
  demux.finish();
  ASSERT_TRUE(r) << r.error();
  EXPECT_EQ(r->status, 200u);
  EXPECT_TRUE(r->body.empty());
  const std::vector<std::pair<int, std::string>> expected = {
      {1, "first line"}, {2, "an error"}, {1, "second line"}, {2, "no newline at the end"}};
  EXPECT_EQ(lines, expected);
}

// The bug this guards against: reading a stream until a buffer fills held
// a quiet container's lines back until it printed 16 KiB more.
TEST_F(EngineClientTest, StreamDeliversWhatArrivedWhileItStaysOpen) {
  EngineExchange exchange;
  exchange.pieces = {chunkedHeader(200, "application/vnd.docker.raw-stream") + chunk(logFrame(1, "ready\n"))};
  exchange.holdOpen = true;
  engine->script(exchange);
  auto canceller = std::make_shared<docker::StreamCanceller>();
  std::string received;
  bool finished = false;
  EngineResult result{boost::system::in_place_error, "not finished"};
  boost::asio::co_spawn(io,
                        client.stream(
                            http::verb::get, "/containers/abc/logs?follow=1",
                            [&](std::string_view bytes) { received.append(bytes); }, RequestOptions{}, canceller),
                        [&](std::exception_ptr, EngineResult r) {
                          result = std::move(r);
                          finished = true;
                        });
  ASSERT_TRUE(runUntil(io, [&] { return received == logFrame(1, "ready\n"); }));
  EXPECT_FALSE(finished);
  canceller->cancel();
  ASSERT_TRUE(runUntil(io, [&] { return finished; }));
  ASSERT_TRUE(result) << result.error();  // cancelled: the response so far, not an error
  EXPECT_EQ(result->status, 200u);
}

TEST_F(EngineClientTest, StreamErrorStatusCarriesTheBody) {
  engine->answer(404, R"({"message":"No such container: abc"})");
  bool called = false;
  auto r = run(io, client.stream(
                       http::verb::get, "/containers/abc/logs?follow=1", [&](std::string_view) { called = true; },
                       RequestOptions{}, nullptr));
  ASSERT_TRUE(r) << r.error();
  EXPECT_EQ(r->status, 404u);
  EXPECT_EQ(r->message(), "No such container: abc");
  EXPECT_FALSE(called);
}

TEST_F(EngineClientTest, UploadSendsTheFile) {
  std::string tar(100000, '\0');
  for (std::size_t i = 0; i < tar.size(); ++i) tar[i] = static_cast<char>(i * 7);
  dir.writeFile("image.tar", tar);
  engine->answer(200, "{\"status\":\"sha256:1\"}\n");
  RequestOptions options;
  options.contentType = "application/x-tar";
  auto r = run(io, client.upload(http::verb::post, "/images/create?fromSrc=-", dir / "image.tar", options));
  ASSERT_TRUE(r) << r.error();
  ASSERT_EQ(engine->requests().size(), 1u);
  EXPECT_EQ(engine->requests()[0].contentType, "application/x-tar");
  EXPECT_EQ(engine->requests()[0].body, tar);
}

TEST(DockerHost, ParsesUnixSocketsOnly) {
  EXPECT_EQ(must(docker::parseDockerHost("")), "/var/run/docker.sock");
  EXPECT_EQ(must(docker::parseDockerHost("unix:///run/user/1000/docker.sock")), "/run/user/1000/docker.sock");
  EXPECT_EQ(must(docker::parseDockerHost("/tmp/d.sock")), "/tmp/d.sock");
  auto tcp = docker::parseDockerHost("tcp://10.0.0.1:2375");
  ASSERT_FALSE(tcp);
  EXPECT_NE(tcp.error().find("only unix://"), std::string::npos);
  EXPECT_FALSE(docker::parseDockerHost("unix://relative.sock"));
}

TEST(QueryValue, PercentEncodesAllButUnreserved) {
  EXPECT_EQ(docker::encodeQueryValue(R"({"label":["a=b"]})"), "%7B%22label%22%3A%5B%22a%3Db%22%5D%7D");
  EXPECT_EQ(docker::encodeQueryValue("USER 10001:10001"), "USER%2010001%3A10001");
  EXPECT_EQ(docker::encodeQueryValue("a-b.c_d~e"), "a-b.c_d~e");
}

}  // namespace
}  // namespace tinyfaas::test
