// The CoAP frontend against libcoap's own coap-client (an independent
// implementation) and against hand-built datagrams, with a fake Invoker.
// Everything binds 127.0.0.1 port 0; every wait is bounded.

#include "frontend/coap/coap_frontend.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <future>
#include <map>
#include <random>
#include <set>
#include <thread>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <gtest/gtest.h>

#include "coap_peers.hpp"
#include "fake_invoker.hpp"
#include "test_support.hpp"

namespace tinyfaas {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using test::answers;
using test::Behaviour;
using test::echoes;
using test::Message;
using test::Option;
using test::Process;
using test::UdpPeer;

constexpr std::uint16_t kUriPath = 11;
constexpr std::uint16_t kBlock1 = 27;
constexpr std::uint16_t kNoResponse = 258;
constexpr std::uint16_t kEcho = 252;

std::string pattern(std::size_t size) {
  std::string s(size, '\0');
  for (std::size_t i = 0; i < size; ++i) s[i] = static_cast<char>('a' + (i * 7 + i / 26) % 26);
  return s;
}

class CoapFrontendTest : public ::testing::Test {
 protected:
  void SetUp() override {
    invoker_ = std::make_unique<test::FakeInvoker>();
    invoker_->set("echo", echoes());
    invoker_->set("hello", answers(CallStatus::ok, "hello world"));
    invoker_->set("broken", answers(CallStatus::functionError, "boom: handler exited with 1"));
    thread_ = std::thread([this] { ioc_.run(); });
  }

  void TearDown() override {
    onLoop([this] {
      if (frontend_) frontend_->stop();
      frontend_.reset();
    });
    work_.reset();
    ioc_.stop();
    thread_.join();
  }

  // Most tests are about other behaviour than the amplification check (see
  // the tests of it below), so their hand-built requests skip the Echo step.
  void start(CoapOptions options = {}, bool verifySources = false) {
    options.address = "127.0.0.1";
    options.port = 0;
    options.verifySources = verifySources;
    onLoop([&] {
      auto created = CoapFrontend::create(ioc_.get_executor(), *invoker_, options);
      ASSERT_TRUE(created) << created.error();
      frontend_ = std::move(*created);
    });
    ASSERT_TRUE(frontend_);
    port_ = frontend_->port();
    ASSERT_NE(port_, 0);
  }

  // Runs f on the loop thread and waits for it (libcoap state lives there).
  template <typename F>
  void onLoop(F&& f) {
    std::promise<void> done;
    asio::post(ioc_, [&] {
      f();
      done.set_value();
    });
    ASSERT_EQ(done.get_future().wait_for(10s), std::future_status::ready);
  }

  CoapStats stats() {
    CoapStats s;
    onLoop([&] { s = frontend_->stats(); });
    return s;
  }

  std::string uri(const std::string& path) const { return "coap://127.0.0.1:" + std::to_string(port_) + "/" + path; }

  // coap-client with `args`, then the URI; skips the test without it.
  test::ProcessResult client(std::vector<std::string> args, const std::string& path,
                             std::chrono::milliseconds deadline = 20s) {
    std::vector<std::string> argv{clientPath_, "-B", "10"};
    argv.insert(argv.end(), args.begin(), args.end());
    argv.push_back(uri(path));
    Process p(argv, dir_.path());
    return p.wait(deadline);
  }

  void requireClient() {
    clientPath_ = test::coapClientPath();
    if (clientPath_.empty()) GTEST_SKIP() << "coap-client (libcoap3-bin) is not installed";
  }

  Message request(std::uint8_t type, std::uint8_t method, std::uint16_t mid, std::string token,
                  const std::string& function, std::string payload = {}) {
    Message m;
    m.type = type;
    m.code = method;
    m.messageId = mid;
    m.token = std::move(token);
    if (!function.empty()) m.options.push_back({kUriPath, function});
    m.payload = std::move(payload);
    return m;
  }

  std::optional<Message> receiveMessage(const UdpPeer& peer, std::chrono::milliseconds timeout = 3s) {
    auto datagram = peer.receive(timeout);
    if (!datagram) return std::nullopt;
    return test::decode(*datagram);
  }

  std::unique_ptr<test::FakeInvoker> invoker_;
  asio::io_context ioc_;
  asio::executor_work_guard<asio::io_context::executor_type> work_ = asio::make_work_guard(ioc_);
  std::thread thread_;
  std::unique_ptr<CoapFrontend> frontend_;
  std::uint16_t port_ = 0;
  test::TempDir dir_;
  std::string clientPath_;
};

// ---- with coap-client --------------------------------------------------------

TEST_F(CoapFrontendTest, GetReturnsTheFunctionsOutput) {
  requireClient();
  start();
  auto r = client({"-o", (dir_ / "out").string()}, "hello");
  ASSERT_EQ(r.exitCode, 0) << r.err;
  EXPECT_EQ(test::readFile(dir_ / "out"), "hello world");
  EXPECT_EQ(invoker_->calls("hello"), 1u);
}

TEST_F(CoapFrontendTest, PostPassesThePayloadAndReturnsTheResultExactly) {
  requireClient();
  start();
  auto r = client({"-m", "post", "-e", "ping 123", "-o", (dir_ / "out").string()}, "echo");
  ASSERT_EQ(r.exitCode, 0) << r.err;
  EXPECT_EQ(test::readFile(dir_ / "out"), "ping 123");
  auto calls = invoker_->invocations();
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_EQ(calls[0].function, "echo");
  EXPECT_EQ(calls[0].payload, "ping 123");
  EXPECT_TRUE(calls[0].headers.empty());
  EXPECT_EQ(stats().piggybacked, 1u);
}

TEST_F(CoapFrontendTest, UnknownFunctionIs404) {
  requireClient();
  start();
  auto r = client({}, "nosuchfn");
  ASSERT_EQ(r.exitCode, 0) << r.err;
  EXPECT_EQ(test::errorLine(r.err).substr(0, 4), "4.04") << r.err;
}

TEST_F(CoapFrontendTest, FunctionErrorIs500WithTheReason) {
  requireClient();
  start();
  auto r = client({"-m", "post", "-e", "x"}, "broken");
  EXPECT_EQ(test::errorLine(r.err), "5.00 boom: handler exited with 1") << r.err;
}

TEST_F(CoapFrontendTest, PayloadAboveTheLimitIs413WithoutACall) {
  requireClient();
  CoapOptions options;
  options.maxPayloadBytes = 1000;
  start(options);
  const std::string file = dir_.writeFile("big", pattern(3000));
  auto r = client({"-m", "post", "-b", "1024", "-f", file}, "echo");
  EXPECT_EQ(test::errorLine(r.err).substr(0, 4), "4.13") << r.err;
  EXPECT_EQ(invoker_->calls("echo"), 0u);
  // A payload within the limit still goes through.
  auto ok = client({"-m", "post", "-e", "small", "-o", (dir_ / "out").string()}, "echo");
  EXPECT_EQ(test::readFile(dir_ / "out"), "small");
}

TEST_F(CoapFrontendTest, NonConfirmableRequestGetsItsAnswer) {
  requireClient();
  start();
  auto r = client({"-N", "-m", "post", "-e", "non", "-o", (dir_ / "out").string()}, "echo");
  ASSERT_EQ(r.exitCode, 0) << r.err;
  EXPECT_EQ(test::readFile(dir_ / "out"), "non");
}

class BlockwiseTest : public CoapFrontendTest, public ::testing::WithParamInterface<std::size_t> {};

TEST_P(BlockwiseTest, LargePayloadBothWays) {
  requireClient();
  start();
  const std::string body = pattern(GetParam());
  const std::string file = dir_.writeFile("in", body);
  auto r = client({"-m", "post", "-b", "1024", "-f", file, "-o", (dir_ / "out").string()}, "echo");
  ASSERT_EQ(r.exitCode, 0) << r.err;
  const std::string out = test::readFile(dir_ / "out");
  EXPECT_EQ(out.size(), body.size());
  EXPECT_TRUE(out == body);
  auto calls = invoker_->invocations();
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_TRUE(calls[0].payload == body);
}

TEST_P(BlockwiseTest, LargeResultOfAGet) {
  requireClient();
  const std::string body = pattern(GetParam());
  invoker_->set("big", answers(CallStatus::ok, body));
  start();
  auto r = client({"-b", "1024", "-o", (dir_ / "out").string()}, "big");
  ASSERT_EQ(r.exitCode, 0) << r.err;
  EXPECT_TRUE(test::readFile(dir_ / "out") == body);
  EXPECT_EQ(invoker_->calls("big"), 1u);
}

INSTANTIATE_TEST_SUITE_P(Sizes, BlockwiseTest, ::testing::Values(4096, 100 * 1024));

TEST_F(CoapFrontendTest, LargeAnswerToANonRequest) {
  requireClient();
  const std::string body = pattern(10 * 1024);
  invoker_->set("big", answers(CallStatus::ok, body));
  start();
  auto r = client({"-N", "-b", "1024", "-o", (dir_ / "out").string()}, "big");
  ASSERT_EQ(r.exitCode, 0) << r.err;
  EXPECT_TRUE(test::readFile(dir_ / "out") == body);
}

TEST_F(CoapFrontendTest, SlowCallDoesNotDelayAFastOne) {
  requireClient();
  invoker_->set("slow", test::gated("slow done"));
  start();
  Process slow({clientPath_, "-B", "10", "-o", (dir_ / "slow").string(), uri("slow")}, dir_.path());
  ASSERT_TRUE(test::eventually([&] { return invoker_->calls("slow") != 0; }));
  ASSERT_EQ(invoker_->calls("slow"), 1u);

  auto fast = client({"-o", (dir_ / "fast").string()}, "hello");
  ASSERT_EQ(fast.exitCode, 0) << fast.err;
  EXPECT_EQ(test::readFile(dir_ / "fast"), "hello world");
  // The fast answer came back while the slow call was still running.
  EXPECT_EQ(invoker_->completed("slow"), 0u);

  onLoop([this] { invoker_->openGates(); });
  auto r = slow.wait(20s);
  ASSERT_EQ(r.exitCode, 0) << r.err;
  EXPECT_EQ(test::readFile(dir_ / "slow"), "slow done");
}

TEST_F(CoapFrontendTest, SlowCallPastTheWindowIsAnsweredSeparately) {
  requireClient();
  invoker_->set("slow", answers(CallStatus::ok, "late", 400ms));
  CoapOptions options;
  options.piggybackWindow = 100ms;
  start(options);
  auto r = client({"-o", (dir_ / "out").string()}, "slow");
  ASSERT_EQ(r.exitCode, 0) << r.err;
  EXPECT_EQ(test::readFile(dir_ / "out"), "late");
  const CoapStats s = stats();
  EXPECT_EQ(s.separate, 1u);
  EXPECT_EQ(s.piggybacked, 0u);
}

TEST_F(CoapFrontendTest, NoResponseForSuccessRunsTheFunctionDetached) {
  requireClient();
  start();
  // No-Response 2: not interested in 2.xx. coap-client waits for an answer
  // that never comes, so it is stopped by -B.
  auto r =
      client({"-N", "-B", "1", "-m", "post", "-e", "fire", "-O", "258,0x02", "-o", (dir_ / "out").string()}, "echo");
  EXPECT_EQ(test::readFile(dir_ / "out"), "");
  EXPECT_EQ(invoker_->detachedCalls("echo"), 1u);
  EXPECT_EQ(invoker_->calls("echo"), 0u);
}

// ---- amplification: sources must prove their address ---------------------------------

TEST_F(CoapFrontendTest, CoapClientGetsALargeAnswerFromAnUnverifiedSource) {
  requireClient();
  const std::string body = pattern(1024);
  invoker_->set("big", answers(CallStatus::ok, body));
  start({}, true);
  auto r = client({"-o", (dir_ / "out").string()}, "big");
  ASSERT_EQ(r.exitCode, 0) << r.err;
  EXPECT_EQ(test::readFile(dir_ / "out"), body);
  EXPECT_EQ(invoker_->calls("big"), 1u);
  // A block-wise upload from a new source works too.
  const std::string upload = pattern(3000);
  auto up =
      client({"-m", "post", "-b", "256", "-f", dir_.writeFile("in", upload), "-o", (dir_ / "echoed").string()}, "echo");
  ASSERT_EQ(up.exitCode, 0) << up.err;
  EXPECT_EQ(test::readFile(dir_ / "echoed"), upload);
}

std::optional<std::string> optionValue(const Message& message, std::uint16_t number) {
  for (const Option& o : message.options)
    if (o.number == number) return o.value;
  return std::nullopt;
}

constexpr std::uint16_t kBlock2 = 23;

// Sends `request` and collects what comes back within a short window.
std::vector<std::string> exchangeDatagrams(const UdpPeer& peer, const Message& request) {
  peer.send(test::encode(request));
  std::vector<std::string> got;
  for (int i = 0; i < 10; ++i) {
    auto datagram = peer.receive(got.empty() ? 3s : 300ms);
    if (!datagram) break;
    got.push_back(*datagram);
  }
  return got;
}

TEST_F(CoapFrontendTest, AnUnverifiedSourceGetsAtMostThreeTimesItsRequest) {
  invoker_->set("big", answers(CallStatus::ok, pattern(1024)));
  start({}, true);
  UdpPeer peer(port_);
  // 9 bytes: header, a 1-byte token, Uri-Path "big".
  const Message get = request(test::kCon, 1, 0x0101, "t", "big");
  ASSERT_EQ(test::encode(get).size(), 9u);
  const auto got = exchangeDatagrams(peer, get);
  ASSERT_EQ(got.size(), 1u);
  auto first = test::decode(got[0]);
  ASSERT_TRUE(first);
  EXPECT_LE(got[0].size(), 27u) << [&] {
    std::string o;
    for (const Option& option : first->options)
      o += std::to_string(option.number) + ":" + std::to_string(option.value.size()) + " ";
    return o;
  }();
  EXPECT_EQ(test::codeText(first->code), "2.05");
  EXPECT_EQ(first->type, test::kAck);
  // The first of 16-byte blocks, more to come.
  const auto block2 = optionValue(*first, kBlock2);
  ASSERT_TRUE(block2);
  EXPECT_EQ(static_cast<unsigned char>(block2->back()) & 0x0f, 0x08u);
  EXPECT_EQ(first->payload, pattern(1024).substr(0, 16));
  // Later blocks come on request, each within three times its request.
  Message next = request(test::kCon, 1, 0x0102, "t", "big");
  next.options.push_back({kBlock2, std::string(1, static_cast<char>(1 << 4))});
  const auto second = exchangeDatagrams(peer, next);
  ASSERT_EQ(second.size(), 1u);
  EXPECT_LE(second[0].size(), 3 * test::encode(next).size());
  auto block = test::decode(second[0]);
  ASSERT_TRUE(block);
  EXPECT_EQ(block->payload, pattern(1024).substr(16, 16));
  EXPECT_EQ(invoker_->calls("big"), 1u);
}

TEST_F(CoapFrontendTest, AFunctionErrorToAnUnverifiedSourceHasItsReasonCutToFit) {
  start({}, true);
  UdpPeer peer(port_);
  const Message get = request(test::kCon, 1, 0x0111, "", "broken");  // 11 bytes
  const auto got = exchangeDatagrams(peer, get);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_LE(got[0].size(), 3 * test::encode(get).size());
  auto reply = test::decode(got[0]);
  ASSERT_TRUE(reply);
  EXPECT_EQ(test::codeText(reply->code), "5.00");
  EXPECT_FALSE(optionValue(*reply, kBlock2));
  EXPECT_FALSE(reply->payload.empty());
  EXPECT_EQ(std::string("boom: handler exited with 1").rfind(reply->payload, 0), 0u) << reply->payload;
}

TEST_F(CoapFrontendTest, AnEchoValueReturnedInALaterRequestLiftsTheLimit) {
  invoker_->set("big", answers(CallStatus::ok, pattern(1024)));
  start({}, true);
  UdpPeer peer(port_);
  UdpPeer other(port_);
  // A small answer fits beside an Echo value.
  auto small = exchangeDatagrams(peer, request(test::kCon, 1, 0x0201, "a", "hello"));
  ASSERT_EQ(small.size(), 1u);
  auto hello = test::decode(small[0]);
  ASSERT_TRUE(hello);
  EXPECT_EQ(hello->payload, "hello world");
  const auto echo = optionValue(*hello, kEcho);
  ASSERT_TRUE(echo);
  EXPECT_EQ(echo->size(), 8u);
  // Another source presenting it, or a made-up value, proves nothing.
  Message stolen = request(test::kCon, 1, 0x0202, "b", "big");
  stolen.options.push_back({kEcho, *echo});
  auto still = exchangeDatagrams(other, stolen);
  ASSERT_FALSE(still.empty());
  EXPECT_LE(still[0].size(), 3 * test::encode(stolen).size());
  Message forged = request(test::kCon, 1, 0x0203, "c", "big");
  forged.options.push_back({kEcho, "12345678"});
  auto forgedReply = exchangeDatagrams(peer, forged);
  ASSERT_FALSE(forgedReply.empty());
  EXPECT_LE(forgedReply[0].size(), 3 * test::encode(forged).size());
  // The source's own value does: the next answer is as large as libcoap sends.
  Message proven = request(test::kCon, 1, 0x0204, "d", "big");
  proven.options.push_back({kEcho, *echo});
  auto full = exchangeDatagrams(peer, proven);
  ASSERT_FALSE(full.empty());
  EXPECT_GT(full[0].size(), 1000u);
  EXPECT_EQ(stats().verified, 1u);
}

TEST_F(CoapFrontendTest, ASeparateAnswerToAnUnverifiedSourceIsNotRetransmitted) {
  invoker_->set("slow", answers(CallStatus::ok, "done", 300ms));
  CoapOptions options;
  options.piggybackWindow = 50ms;
  start(options, true);
  UdpPeer peer(port_);
  auto got = exchangeDatagrams(peer, request(test::kCon, 1, 0x0301, "s", "slow"));
  ASSERT_EQ(got.size(), 2u);
  auto ack = test::decode(got[0]);
  auto answer = test::decode(got[1]);
  ASSERT_TRUE(ack && answer);
  EXPECT_EQ(ack->type, test::kAck);
  EXPECT_EQ(answer->type, test::kNon);
  EXPECT_EQ(answer->payload, "done");
}

TEST_F(CoapFrontendTest, ErrorsToAnUnverifiedSourceCarryNoReasonText) {
  start({}, true);
  UdpPeer peer(port_);
  const std::string datagram = test::encode(request(test::kCon, 3, 0x0301, "", "a"));  // PUT /a: 6 bytes
  peer.send(datagram);
  auto raw = peer.receive(3s);
  ASSERT_TRUE(raw);
  EXPECT_LE(raw->size(), 3 * datagram.size());
  auto reply = test::decode(*raw);
  ASSERT_TRUE(reply);
  EXPECT_EQ(test::codeText(reply->code), "4.05");
  EXPECT_EQ(reply->payload, "");
}

TEST_F(CoapFrontendTest, NoResponseToEveryClassRunsWithoutAChallenge) {
  start({}, true);
  UdpPeer peer(port_);
  Message fire = request(test::kNon, 2, 0x0401, "f", "echo", "fire");
  fire.options.push_back({kNoResponse, std::string(1, '\x1a')});
  peer.send(test::encode(fire));
  EXPECT_FALSE(peer.receive(300ms));
  EXPECT_EQ(invoker_->detachedCalls("echo"), 1u);
}

// ---- with hand-built datagrams --------------------------------------------------

TEST_F(CoapFrontendTest, QuickResultIsPiggyBackedInTheAck) {
  start();
  UdpPeer peer(port_);
  peer.send(test::encode(request(test::kCon, 2, 0x1234, "tk", "echo", "abc")));
  auto reply = receiveMessage(peer);
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->type, test::kAck);
  EXPECT_EQ(reply->messageId, 0x1234);
  EXPECT_EQ(test::codeText(reply->code), "2.05");
  EXPECT_EQ(reply->token, "tk");
  EXPECT_EQ(reply->payload, "abc");
  // And nothing else follows.
  EXPECT_FALSE(peer.receive(200ms));
}

// The status a function chose becomes the CoAP code, its Content-Type the
// Content-Format (option 12) where one is registered.
TEST_F(CoapFrontendTest, TheFunctionsStatusAndContentTypeAreMapped) {
  struct Case {
    std::string name;
    unsigned code;
    std::string contentType;
    std::string coapCode;
    std::optional<std::string> format;  // the option's value bytes
  };
  const std::vector<Case> cases = {
      {"made", 201, "", "2.01", std::nullopt},
      {"json", 200, "application/json; charset=utf-8", "2.05", std::string(1, '\x32')},
      {"text", 200, "Text/Plain", "2.05", std::string()},  // 0 is encoded in no bytes
      {"html", 200, "text/html", "2.05", std::nullopt},
      {"missing", 404, "", "4.04", std::nullopt},
      {"teapot", 418, "", "4.00", std::nullopt},
      {"later", 503, "", "5.03", std::nullopt},
  };
  for (const auto& c : cases) {
    Behaviour b = answers(c.code < 500 ? CallStatus::ok : CallStatus::functionError, "ok");
    b.result.code = c.code;
    if (!c.contentType.empty()) b.result.headers = {{"Content-Type", c.contentType}};
    invoker_->set(c.name, b);
  }
  start();
  UdpPeer peer(port_);
  std::uint16_t mid = 0x2000;
  for (const auto& c : cases) {
    peer.send(test::encode(request(test::kCon, 2, ++mid, "tk", c.name, "a request long enough to be answered")));
    auto reply = receiveMessage(peer);
    ASSERT_TRUE(reply) << c.name;
    EXPECT_EQ(test::codeText(reply->code), c.coapCode) << c.name;
    std::optional<std::string> format;
    for (const auto& option : reply->options)
      if (option.number == 12) format = option.value;
    EXPECT_EQ(format, c.format) << c.name;
  }
}

TEST_F(CoapFrontendTest, RetransmittedConIsAnsweredAgainWithoutASecondCall) {
  start();
  UdpPeer peer(port_);
  const std::string datagram = test::encode(request(test::kCon, 2, 0x4242, "dup", "echo", "once"));
  peer.send(datagram);
  auto first = receiveMessage(peer);
  ASSERT_TRUE(first);
  EXPECT_EQ(first->type, test::kAck);
  EXPECT_EQ(first->payload, "once");

  peer.send(datagram);  // as if our ACK had been lost
  auto second = receiveMessage(peer);
  ASSERT_TRUE(second);
  EXPECT_EQ(second->type, test::kAck);
  EXPECT_EQ(second->messageId, 0x4242);
  EXPECT_EQ(test::codeText(second->code), "2.05");
  EXPECT_EQ(second->payload, "once");
  EXPECT_EQ(invoker_->calls("echo"), 1u);
  EXPECT_EQ(stats().duplicates, 1u);
}

TEST_F(CoapFrontendTest, RetransmissionWhileTheCallRunsGetsAnEmptyAckThenTheAnswer) {
  invoker_->set("slow", test::gated("done"));
  start();
  UdpPeer peer(port_);
  const std::string datagram = test::encode(request(test::kCon, 1, 0x0777, "t1", "slow"));
  peer.send(datagram);
  ASSERT_TRUE(test::eventually([&] { return invoker_->calls("slow") != 0; }));
  EXPECT_FALSE(peer.receive(100ms));  // still inside the piggy-back window: no ACK yet

  peer.send(datagram);
  auto ack = receiveMessage(peer);
  ASSERT_TRUE(ack);
  EXPECT_EQ(ack->type, test::kAck);
  EXPECT_EQ(ack->code, 0);
  EXPECT_EQ(ack->messageId, 0x0777);

  onLoop([this] { invoker_->openGates(); });
  auto answer = receiveMessage(peer);
  ASSERT_TRUE(answer);
  EXPECT_EQ(answer->type, test::kCon);
  EXPECT_EQ(answer->token, "t1");
  EXPECT_EQ(test::codeText(answer->code), "2.05");
  EXPECT_EQ(answer->payload, "done");
  // Acknowledge it, so that libcoap stops retransmitting.
  Message ackOfAnswer;
  ackOfAnswer.type = test::kAck;
  ackOfAnswer.messageId = answer->messageId;
  peer.send(test::encode(ackOfAnswer));
  EXPECT_EQ(invoker_->calls("slow"), 1u);
}

TEST_F(CoapFrontendTest, EmptyAckWhenTheWindowPassesThenSeparateAnswer) {
  invoker_->set("slow", answers(CallStatus::ok, "later", 300ms));
  CoapOptions options;
  options.piggybackWindow = 50ms;
  start(options);
  UdpPeer peer(port_);
  peer.send(test::encode(request(test::kCon, 1, 0x0101, "w", "slow")));
  auto ack = receiveMessage(peer);
  ASSERT_TRUE(ack);
  EXPECT_EQ(ack->type, test::kAck);
  EXPECT_EQ(ack->code, 0);
  EXPECT_EQ(ack->messageId, 0x0101);
  EXPECT_TRUE(ack->token.empty());
  auto answer = receiveMessage(peer);
  ASSERT_TRUE(answer);
  EXPECT_EQ(answer->type, test::kCon);
  EXPECT_EQ(answer->payload, "later");
  Message ackOfAnswer;
  ackOfAnswer.type = test::kAck;
  ackOfAnswer.messageId = answer->messageId;
  peer.send(test::encode(ackOfAnswer));
}

TEST_F(CoapFrontendTest, BurstOfFiftyNonRequestsIsAllAnswered) {
  start();
  UdpPeer peer(port_);
  std::set<std::string> expected;
  for (int i = 0; i < 50; ++i) {
    const std::string token = "b" + std::to_string(i);
    expected.insert(token);
    peer.send(test::encode(request(test::kNon, 2, static_cast<std::uint16_t>(0x2000 + i), token, "echo", token)));
  }
  std::set<std::string> answered;
  const auto until = std::chrono::steady_clock::now() + 10s;
  while (answered.size() < expected.size() && std::chrono::steady_clock::now() < until) {
    auto reply = receiveMessage(peer, 1s);
    if (!reply) continue;
    EXPECT_EQ(reply->type, test::kNon);
    EXPECT_EQ(reply->payload, reply->token);
    answered.insert(reply->token);
  }
  EXPECT_EQ(answered, expected);
  EXPECT_EQ(invoker_->calls("echo"), 50u);
}

TEST_F(CoapFrontendTest, DuplicateNonIsIgnored) {
  start();
  UdpPeer peer(port_);
  const std::string datagram = test::encode(request(test::kNon, 2, 0x3333, "n", "echo", "x"));
  peer.send(datagram);
  auto reply = receiveMessage(peer);
  ASSERT_TRUE(reply);
  peer.send(datagram);
  EXPECT_FALSE(peer.receive(300ms));
  EXPECT_EQ(invoker_->calls("echo"), 1u);
}

struct StatusCase {
  CallStatus status;
  const char* code;
};

class StatusMappingTest : public CoapFrontendTest, public ::testing::WithParamInterface<StatusCase> {};

TEST_P(StatusMappingTest, EachCallStatusHasItsCode) {
  invoker_->set("fn", answers(GetParam().status, "why"));
  start();
  UdpPeer peer(port_);
  peer.send(test::encode(request(test::kCon, 1, 0x0042, "s", "fn")));
  auto reply = receiveMessage(peer);
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->type, test::kAck);
  EXPECT_EQ(test::codeText(reply->code), GetParam().code);
  EXPECT_EQ(reply->payload, "why");
}

INSTANTIATE_TEST_SUITE_P(All, StatusMappingTest,
                         ::testing::Values(StatusCase{CallStatus::ok, "2.05"}, StatusCase{CallStatus::notFound, "4.04"},
                                           StatusCase{CallStatus::functionError, "5.00"},
                                           StatusCase{CallStatus::unavailable, "5.03"},
                                           StatusCase{CallStatus::overloaded, "5.03"},
                                           StatusCase{CallStatus::timeout, "5.04"},
                                           StatusCase{CallStatus::payloadTooLarge, "4.13"}));

TEST_F(CoapFrontendTest, CallsBeyondMaxInFlightAre503) {
  invoker_->set("slow", test::gated("slow"));
  CoapOptions options;
  options.maxInFlight = 1;
  start(options);
  UdpPeer peer(port_);
  peer.send(test::encode(request(test::kCon, 1, 0x0801, "a", "slow")));
  ASSERT_TRUE(test::eventually([&] { return invoker_->calls("slow") != 0; }));
  peer.send(test::encode(request(test::kCon, 1, 0x0802, "b", "slow")));
  auto reply = receiveMessage(peer);
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->messageId, 0x0802);
  EXPECT_EQ(test::codeText(reply->code), "5.03");
  EXPECT_EQ(invoker_->calls("slow"), 1u);
  onLoop([this] { invoker_->openGates(); });
  auto first = receiveMessage(peer);
  ASSERT_TRUE(first);
  EXPECT_EQ(first->messageId, 0x0801);
  EXPECT_EQ(first->payload, "slow");
}

TEST_F(CoapFrontendTest, CallWithoutResultByTheDeadlineGets504) {
  invoker_->set("stuck", test::gated("too late"));
  CoapOptions options;
  options.callDeadline = 50ms;
  options.piggybackWindow = 5s;  // so the 5.04 can still ride in the ACK
  start(options);
  UdpPeer peer(port_);
  peer.send(test::encode(request(test::kCon, 1, 0x0803, "s", "stuck")));
  auto reply = receiveMessage(peer, 5s);
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->type, test::kAck);
  EXPECT_EQ(test::codeText(reply->code), "5.04");
  onLoop([this] { invoker_->openGates(); });  // the late result is dropped
  EXPECT_FALSE(peer.receive(200ms));
  EXPECT_EQ(stats().inFlight, 0u);
}

TEST_F(CoapFrontendTest, PathsOtherThanOneSegmentAre404) {
  start();
  UdpPeer peer(port_);
  Message noPath = request(test::kCon, 1, 1, "a", "");
  Message twoSegments = request(test::kCon, 1, 2, "b", "echo");
  twoSegments.options.push_back({kUriPath, "more"});
  Message badName = request(test::kCon, 1, 3, "c", "no_underscore");
  Message wellKnown = request(test::kCon, 1, 4, "d", ".well-known");
  wellKnown.options.push_back({kUriPath, "core"});
  for (const Message& m : {noPath, twoSegments, badName, wellKnown}) {
    peer.send(test::encode(m));
    auto reply = receiveMessage(peer);
    ASSERT_TRUE(reply);
    EXPECT_EQ(reply->type, test::kAck);
    EXPECT_EQ(reply->messageId, m.messageId);
    EXPECT_EQ(test::codeText(reply->code), "4.04");
    EXPECT_FALSE(reply->payload.empty());
  }
  EXPECT_TRUE(invoker_->invocations().empty());
}

TEST_F(CoapFrontendTest, PutAndDeleteAre405) {
  start();
  UdpPeer peer(port_);
  for (std::uint8_t method : {std::uint8_t{3}, std::uint8_t{4}}) {
    peer.send(test::encode(request(test::kCon, method, method, "m", "echo", "x")));
    auto reply = receiveMessage(peer);
    ASSERT_TRUE(reply);
    EXPECT_EQ(test::codeText(reply->code), "4.05");
  }
  EXPECT_TRUE(invoker_->invocations().empty());
}

TEST_F(CoapFrontendTest, NoResponseForErrorsOnlyStillAnswersSuccess) {
  start();
  UdpPeer peer(port_);
  Message m = request(test::kCon, 2, 0x0600, "nr", "echo", "fine");
  m.options.push_back({kNoResponse, std::string(1, static_cast<char>(8 | 16))});
  peer.send(test::encode(m));
  auto reply = receiveMessage(peer);
  ASSERT_TRUE(reply);
  EXPECT_EQ(test::codeText(reply->code), "2.05");
  EXPECT_EQ(reply->payload, "fine");

  // The same suppression on an error: an empty ACK, nothing more.
  Message missing = request(test::kCon, 2, 0x0601, "nr2", "broken", "x");
  missing.options.push_back({kNoResponse, std::string(1, static_cast<char>(8 | 16))});
  peer.send(test::encode(missing));
  auto ack = receiveMessage(peer);
  ASSERT_TRUE(ack);
  EXPECT_EQ(ack->type, test::kAck);
  EXPECT_EQ(ack->code, 0);
  EXPECT_FALSE(peer.receive(200ms));
}

TEST_F(CoapFrontendTest, NoResponseOnConGivesAnEmptyAckAndRunsDetached) {
  start();
  UdpPeer peer(port_);
  Message m = request(test::kCon, 2, 0x0700, "d", "echo", "bg");
  m.options.push_back({kNoResponse, std::string(1, '\x02')});
  peer.send(test::encode(m));
  auto ack = receiveMessage(peer);
  ASSERT_TRUE(ack);
  EXPECT_EQ(ack->type, test::kAck);
  EXPECT_EQ(ack->code, 0);
  EXPECT_FALSE(peer.receive(200ms));
  EXPECT_EQ(invoker_->detachedCalls("echo"), 1u);
}

TEST_F(CoapFrontendTest, MalformedDatagramsAreIgnoredOrRejectedAndServiceContinues) {
  start();
  UdpPeer peer(port_);
  std::mt19937 random(7);
  for (int i = 0; i < 100; ++i) {
    std::string junk(1 + random() % 64, '\0');
    for (char& c : junk) c = static_cast<char>(random());
    peer.send(junk);
  }
  peer.send(std::string("\x40\x01", 2));          // truncated header
  peer.send(std::string("\x80\x01\x00\x01", 4));  // version 2
  peer.send(
      std::string("\x48\x01\x00\x02"
                  "ab",
                  6));  // token shorter than announced
  peer.send(
      std::string("\x40\x01\x00\x03\xF5"
                  "abcde",
                  10));  // reserved option delta 15
  Message critical = request(test::kCon, 1, 4, "c", "echo");
  critical.options.push_back({9, "x"});  // unknown critical option
  peer.send(test::encode(critical));

  // Whatever came back must be a valid RST or an error response, never a call.
  const auto until = std::chrono::steady_clock::now() + 1s;
  while (std::chrono::steady_clock::now() < until) {
    auto reply = peer.receive(100ms);
    if (!reply) break;
    auto m = test::decode(*reply);
    ASSERT_TRUE(m);
    EXPECT_TRUE(m->type == test::kRst || (m->code >> 5) == 4) << test::codeText(m->code);
  }
  EXPECT_TRUE(invoker_->invocations().empty());

  peer.send(test::encode(request(test::kCon, 2, 0x0900, "ok", "echo", "still here")));
  std::optional<Message> reply;
  for (int i = 0; i < 10 && !(reply && reply->messageId == 0x0900); ++i) reply = receiveMessage(peer, 1s);
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->payload, "still here");
}

TEST_F(CoapFrontendTest, BlockwiseUploadIsAnsweredWithBlock1Echoed) {
  start();
  UdpPeer peer(port_);
  const std::string body = pattern(100);
  // Two blocks of 64 bytes (SZX 2).
  Message first = request(test::kCon, 2, 0x5000, "up", "echo", body.substr(0, 64));
  first.options.push_back({kBlock1, std::string(1, static_cast<char>((0 << 4) | 0x08 | 2))});
  peer.send(test::encode(first));
  auto cont = receiveMessage(peer);
  ASSERT_TRUE(cont);
  EXPECT_EQ(test::codeText(cont->code), "2.31");
  Message last = request(test::kCon, 2, 0x5001, "up", "echo", body.substr(64));
  last.options.push_back({kBlock1, std::string(1, static_cast<char>((1 << 4) | 2))});
  peer.send(test::encode(last));
  auto reply = receiveMessage(peer);
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->type, test::kAck);
  EXPECT_EQ(reply->messageId, 0x5001);
  EXPECT_EQ(test::codeText(reply->code), "2.05");
  EXPECT_EQ(reply->payload, body);
  bool block1 = false;
  for (const Option& o : reply->options)
    if (o.number == kBlock1) block1 = o.value == std::string(1, static_cast<char>((1 << 4) | 2));
  EXPECT_TRUE(block1);
  auto calls = invoker_->invocations();
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_EQ(calls[0].payload, body);
}

// Block 0 of 64 bytes (SZX 2) of an upload to echo, more to come.
Message firstBlock(std::uint16_t mid, const std::string& body) {
  Message m;
  m.type = test::kCon;
  m.code = 2;
  m.messageId = mid;
  m.token = "up";
  m.options.push_back({kUriPath, "echo"});
  m.options.push_back({kBlock1, std::string(1, static_cast<char>(0x08 | 2))});
  m.payload = body.substr(0, 64);
  return m;
}

TEST_F(CoapFrontendTest, UploadsBeyondTheirCountOrBytesAre503AndTheOthersGoOn) {
  CoapOptions options;
  options.maxUploads = 2;
  options.maxUploadBytes = 120;
  start(options);
  const std::string body = pattern(100);
  UdpPeer a(port_);
  UdpPeer b(port_);
  UdpPeer c(port_);
  a.send(test::encode(firstBlock(0x6001, body)));
  auto reply = receiveMessage(a);
  ASSERT_TRUE(reply);
  EXPECT_EQ(test::codeText(reply->code), "2.31");
  // 64 bytes held: another 64 would pass the 120-byte budget.
  b.send(test::encode(firstBlock(0x6002, body)));
  reply = receiveMessage(b);
  ASSERT_TRUE(reply);
  EXPECT_EQ(test::codeText(reply->code), "5.03");
  EXPECT_EQ(reply->payload, "too many bytes in uploads in progress");
  // b's upload was dropped, so it takes no place; a third one is the
  // second in progress, a fourth one too many.
  Message small = firstBlock(0x6003, body);
  small.options.back().value = std::string(1, static_cast<char>(0x08 | 0));  // 16-byte blocks
  small.payload = body.substr(0, 16);
  c.send(test::encode(small));
  reply = receiveMessage(c);
  ASSERT_TRUE(reply);
  EXPECT_EQ(test::codeText(reply->code), "2.31");
  small.messageId = 0x6004;
  b.send(test::encode(small));
  reply = receiveMessage(b);
  ASSERT_TRUE(reply);
  EXPECT_EQ(test::codeText(reply->code), "5.03");
  EXPECT_EQ(reply->payload, "too many uploads in progress");
  // The first upload goes on to its end.
  Message last = request(test::kCon, 2, 0x6005, "up", "echo", body.substr(64));
  last.options.push_back({kBlock1, std::string(1, static_cast<char>((1 << 4) | 2))});
  a.send(test::encode(last));
  reply = receiveMessage(a);
  ASSERT_TRUE(reply);
  EXPECT_EQ(test::codeText(reply->code), "2.05");
  EXPECT_EQ(reply->payload, body);
}

TEST_F(CoapFrontendTest, ConcurrentLargeAnswersOfTwoFunctionsToOnePeerStayApart) {
  const std::string first = pattern(300);
  const std::string second = std::string(300, 'Z');
  invoker_->set("one", answers(CallStatus::ok, first));
  invoker_->set("two", answers(CallStatus::ok, second));
  start();
  UdpPeer peer(port_);
  std::uint16_t mid = 0x6000;
  // Blocks of 64 bytes (SZX 2), the two transfers interleaved.
  auto fetch = [&](const std::string& function, unsigned num) {
    ++mid;
    Message m = request(test::kCon, 1, mid, "k" + std::to_string(mid), function);
    m.options.push_back({23, std::string(1, static_cast<char>((num << 4) | 2))});
    peer.send(test::encode(m));
    auto reply = receiveMessage(peer);
    EXPECT_TRUE(reply);
    return reply ? reply->payload : std::string();
  };
  std::string gotFirst;
  std::string gotSecond;
  for (unsigned num = 0; num < 5; ++num) {
    gotFirst += fetch("one", num);
    gotSecond += fetch("two", num);
  }
  EXPECT_EQ(gotFirst, first);
  EXPECT_EQ(gotSecond, second);
  EXPECT_EQ(invoker_->calls("one"), 1u);
  EXPECT_EQ(invoker_->calls("two"), 1u);
}

TEST_F(CoapFrontendTest, ConcurrentCallsWithEmptyTokensFromOnePeerAreAllAnswered) {
  invoker_->set("slow", test::gated("slow"));
  start();
  UdpPeer peer(port_);
  // All results arrive in the same turn of the loop; libcoap allows one async
  // per token, so they have to go one after the other.
  constexpr int kCalls = 6;
  std::set<std::uint16_t> sent;
  for (int i = 0; i < kCalls; ++i) {
    const auto mid = static_cast<std::uint16_t>(0x7001 + i);
    sent.insert(mid);
    peer.send(test::encode(request(test::kCon, 1, mid, "", "slow")));
  }
  ASSERT_TRUE(test::eventually([&] { return invoker_->calls("slow") >= static_cast<std::size_t>(kCalls); }));
  ASSERT_EQ(invoker_->calls("slow"), static_cast<std::size_t>(kCalls));
  onLoop([this] { invoker_->openGates(); });
  std::set<std::uint16_t> answered;
  for (int i = 0; i < kCalls; ++i) {
    auto reply = receiveMessage(peer);
    ASSERT_TRUE(reply);
    EXPECT_EQ(reply->type, test::kAck);
    EXPECT_EQ(reply->payload, "slow");
    answered.insert(reply->messageId);
  }
  EXPECT_EQ(answered, sent);
}

TEST_F(CoapFrontendTest, ConcurrentLargeAnswersWithEmptyTokensFromOnePeerAreAllAnswered) {
  // Large answers go through libcoap's async (one per token and peer at a
  // time), so these three have to take turns.
  std::map<std::string, std::string> bodies;
  for (const char* name : {"fa", "fb", "fc"}) {
    bodies[name] = std::string(1500, name[1]);
    Behaviour b = test::gated(bodies[name]);
    invoker_->set(name, b);
  }
  start();
  UdpPeer peer(port_);
  std::map<std::uint16_t, std::string> byMid;
  std::uint16_t mid = 0x7100;
  for (const auto& [name, body] : bodies) {
    byMid[++mid] = name;
    peer.send(test::encode(request(test::kCon, 1, mid, "", name)));
  }
  ASSERT_TRUE(test::eventually([&] { return invoker_->invocations().size() >= 3; }));
  ASSERT_EQ(invoker_->invocations().size(), 3u);
  onLoop([this] { invoker_->openGates(); });
  for (int i = 0; i < 3; ++i) {
    auto reply = receiveMessage(peer);
    ASSERT_TRUE(reply);
    EXPECT_EQ(reply->type, test::kAck);
    ASSERT_TRUE(byMid.contains(reply->messageId));
    const std::string& body = bodies[byMid[reply->messageId]];
    EXPECT_EQ(test::codeText(reply->code), "2.05");
    EXPECT_FALSE(reply->payload.empty());
    EXPECT_EQ(reply->payload, body.substr(0, reply->payload.size()));  // block 0
    byMid.erase(reply->messageId);
  }
  EXPECT_TRUE(byMid.empty());
}

TEST_F(CoapFrontendTest, Ipv6Loopback) {
  requireClient();
  const int probe = ::socket(AF_INET6, SOCK_DGRAM, 0);
  sockaddr_in6 addr{};
  addr.sin6_family = AF_INET6;
  addr.sin6_addr = in6addr_loopback;
  const bool haveV6 = probe >= 0 && ::bind(probe, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  if (probe >= 0) ::close(probe);
  if (!haveV6) GTEST_SKIP() << "no IPv6 loopback here";
  CoapOptions options;
  options.address = "::1";
  options.port = 0;
  onLoop([&] {
    auto created = CoapFrontend::create(ioc_.get_executor(), *invoker_, options);
    ASSERT_TRUE(created) << created.error();
    frontend_ = std::move(*created);
  });
  ASSERT_NE(frontend_->port(), 0);
  Process p({clientPath_, "-B", "10", "-o", (dir_ / "out").string(),
             "coap://[::1]:" + std::to_string(frontend_->port()) + "/hello"},
            dir_.path());
  auto r = p.wait(20s);
  ASSERT_EQ(r.exitCode, 0) << r.err;
  EXPECT_EQ(test::readFile(dir_ / "out"), "hello world");
}

// ---- lifecycle ---------------------------------------------------------------------

TEST_F(CoapFrontendTest, BindFailureNamesTheAddressAndPort) {
  const int fd = ::socket(AF_INET, SOCK_DGRAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  const std::uint16_t taken = ntohs(addr.sin_port);

  CoapOptions options;
  options.address = "127.0.0.1";
  options.port = taken;
  std::string error;
  onLoop([&] {
    auto created = CoapFrontend::create(ioc_.get_executor(), *invoker_, options);
    ASSERT_FALSE(created);
    error = created.error();
  });
  ::close(fd);
  EXPECT_NE(error.find("127.0.0.1:" + std::to_string(taken)), std::string::npos) << error;
}

TEST_F(CoapFrontendTest, InvalidAddressIsAnError) {
  CoapOptions options;
  options.address = "not an address";
  onLoop([&] {
    auto created = CoapFrontend::create(ioc_.get_executor(), *invoker_, options);
    ASSERT_FALSE(created);
    EXPECT_NE(created.error().find("not an address"), std::string::npos);
  });
}

TEST_F(CoapFrontendTest, AfterStopAcceptingNewRequestsGet503AndCallsInFlightAreAnswered) {
  invoker_->set("slow", test::gated("slow"));
  CoapOptions options;
  options.piggybackWindow = 5s;
  start(options);
  UdpPeer peer(port_);
  peer.send(test::encode(request(test::kCon, 1, 0x0901, "a", "slow")));
  ASSERT_TRUE(test::eventually([&] { return invoker_->calls("slow") != 0; }));
  std::size_t inFlight = 0;
  onLoop([&] {
    frontend_->stopAccepting();
    inFlight = frontend_->callsInFlight();
  });
  EXPECT_EQ(inFlight, 1u);
  peer.send(test::encode(request(test::kCon, 1, 0x0902, "b", "hello")));
  auto refused = receiveMessage(peer);
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->messageId, 0x0902);
  EXPECT_EQ(test::codeText(refused->code), "5.03");
  EXPECT_EQ(refused->payload, "tinyFaaS is shutting down");
  EXPECT_EQ(invoker_->calls("hello"), 0u);
  onLoop([this] { invoker_->openGates(); });
  auto answer = receiveMessage(peer);
  ASSERT_TRUE(answer);
  EXPECT_EQ(answer->messageId, 0x0901);
  EXPECT_EQ(test::codeText(answer->code), "2.05");
  EXPECT_EQ(answer->payload, "slow");
  onLoop([&] { inFlight = frontend_->callsInFlight(); });
  EXPECT_EQ(inFlight, 0u);
}

TEST_F(CoapFrontendTest, CutShortAnswersCallsInFlightWith503) {
  invoker_->set("stuck", test::gated("too late"));
  CoapOptions options;
  options.piggybackWindow = 5s;
  start(options);
  UdpPeer peer(port_);
  peer.send(test::encode(request(test::kCon, 1, 0x0903, "c", "stuck")));
  ASSERT_TRUE(test::eventually([&] { return invoker_->calls("stuck") != 0; }));
  std::size_t inFlight = 1;
  onLoop([&] {
    frontend_->stopAccepting();
    frontend_->cutShort("shutting down now");
    inFlight = frontend_->callsInFlight();
  });
  EXPECT_EQ(inFlight, 0u);
  auto reply = receiveMessage(peer);
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->type, test::kAck);
  EXPECT_EQ(test::codeText(reply->code), "5.03");
  EXPECT_EQ(reply->payload, "shutting down now");
  onLoop([this] { invoker_->openGates(); });  // the late result is dropped
  EXPECT_FALSE(peer.receive(200ms));
}

TEST_F(CoapFrontendTest, CallsCompletingAfterStopAreDroppedSafely) {
  invoker_->set("slow", answers(CallStatus::ok, "too late", 200ms));
  start();
  UdpPeer peer(port_);
  peer.send(test::encode(request(test::kCon, 1, 0x0abc, "z", "slow")));
  ASSERT_TRUE(test::eventually([&] { return invoker_->calls("slow") != 0; }));
  onLoop([this] {
    frontend_->stop();
    frontend_.reset();
  });
  ASSERT_TRUE(test::eventually([&] { return invoker_->completed("slow") != 0; }));
  EXPECT_EQ(invoker_->completed("slow"), 1u);
  // The call's completion was queued on the loop as the call ended, at the
  // latest while the first of these waited: it has run after the second.
  onLoop([] {});
  onLoop([] {});
  EXPECT_FALSE(peer.receive(100ms));
}

TEST_F(CoapFrontendTest, StopReleasesThePort) {
  start();
  const std::uint16_t port = port_;
  onLoop([this] { frontend_->stop(); });
  CoapOptions options;
  options.address = "127.0.0.1";
  options.port = port;
  std::unique_ptr<CoapFrontend> again;
  onLoop([&] {
    auto created = CoapFrontend::create(ioc_.get_executor(), *invoker_, options);
    ASSERT_TRUE(created) << created.error();
    again = std::move(*created);
  });
  EXPECT_EQ(again->port(), port);
  onLoop([&] { again.reset(); });
}

}  // namespace
}  // namespace tinyfaas
