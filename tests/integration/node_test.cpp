// A whole node in-process: the real HTTP, CoAP, gRPC and management
// endpoints on port 0 over a fake backend, called with raw bytes over
// loopback (gRPC with the gRPC module's client); scaling on a manual clock;
// and its shutdown, which must leave no work on its loops.
#include "daemon/node.hpp"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <future>
#include <set>
#include <thread>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>

#include "fake_backend.hpp"
#include "grpc_api/grpc_module.hpp"
#include "manager/log_store.hpp"
#include "test_support.hpp"
#include "util/base64.hpp"
#include "zip_builder.hpp"

namespace tinyfaas {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// A loopback socket of `type` connected to `port`, whose reads give up
// after the test deadline.
int connectTo(int type, int port) {
  const int fd = ::socket(AF_INET, type | SOCK_CLOEXEC, 0);
  timeval timeout{static_cast<time_t>(test::kDeadline.count() / 1000), 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<std::uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
  return fd;
}

void sendAll(int fd, std::string_view bytes) {
  while (!bytes.empty()) {
    const ssize_t n = ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    ASSERT_GT(n, 0);
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
}

// Sends one request with Connection: close and returns every byte until
// the server closes.
std::string exchange(int port, const std::string& request) {
  const int fd = connectTo(SOCK_STREAM, port);
  sendAll(fd, request);
  std::string answer;
  char buffer[4096];
  for (ssize_t n; (n = ::recv(fd, buffer, sizeof buffer, 0)) > 0;) answer.append(buffer, static_cast<std::size_t>(n));
  ::close(fd);
  return answer;
}

std::string post(const std::string& target, const std::string& body) {
  return "POST " + target +
         " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Length: " + std::to_string(body.size()) +
         "\r\n\r\n" + body;
}

class NodeTest : public ::testing::Test {
 protected:
  NodeTest() {
    NodeOptions options;
    options.manager.stateDir = dir / "state";
    options.http.emplace().address = "127.0.0.1";
    options.http->port = 0;
    options.coap.emplace().address = "127.0.0.1";
    options.coap->port = 0;
    options.grpc.emplace().address = "127.0.0.1";
    options.grpc->port = 0;
    options.management.address = "127.0.0.1";
    options.management.port = 0;
    options.shutdownTimeout = 2s;
    // A crashed instance waits an hour before its restart: only a shutdown
    // that cancels the wait ends in time.
    options.manager.restartBackoffMin = 1h;
    options.manager.restartBackoffMax = 1h;
    // Scaling measures idle time by the test's clock, which only advance() moves.
    options.manager.now = [this] { return Clock::time_point(Clock::duration(clockTicks.load())); };
    auto built = Node::create({dataPlane.get_executor(), management.get_executor(), downloads.get_executor()}, backend,
                              logs, std::move(options));
    if (!built) throw std::runtime_error(built.error().message);
    node = std::move(*built);
    // As a runtime image build that outlasts the node: only stop() ends it.
    backend.holdPrepare = true;
    node->start();
    dataPlaneThread = std::thread([this] { dataPlane.run(); });
    managementThread = std::thread([this] { management.run(); });
  }

  ~NodeTest() override {
    if (!stopped) stop();
    downloads.join();
  }

  // Node::stop() as the daemon's SIGTERM runs it; true when both loops then
  // ran out of work within the deadline, as they must for the daemon to
  // return from main.
  bool stop() {
    stopped = true;
    asio::co_spawn(management, node->stop(), [this](std::exception_ptr) {
      dataPlaneWork.reset();
      managementWork.reset();
    });
    auto dataPlaneDone = std::async(std::launch::async, [this] { dataPlaneThread.join(); });
    auto managementDone = std::async(std::launch::async, [this] { managementThread.join(); });
    const auto deadline = std::chrono::steady_clock::now() + test::kDeadline;
    const bool ranOut = dataPlaneDone.wait_until(deadline) == std::future_status::ready &&
                        managementDone.wait_until(deadline) == std::future_status::ready;
    if (!ranOut) {
      // Ends the test rather than hanging it.
      dataPlane.stop();
      management.stop();
    }
    return ranOut;
  }

  // `fields`: more upload fields, each with a leading comma.
  std::string deployEcho(const std::string& fields = "") {
    const std::string zip = test::ZipBuilder().file("fn.py", "def fn(input, headers):\n    return input\n").build();
    return exchange(node->ports().management, post("/upload", R"({"name":"echo","env":"python3","threads":1)" + fields +
                                                                  R"(,"zip":")" + encodeBase64(zip) + R"("})"));
  }

  void advance(Clock::duration by) { clockTicks += by.count(); }

  // The fake backend's instances running now, read on its own thread.
  std::size_t running() {
    std::promise<std::size_t> count;
    asio::post(management, [&] { count.set_value(backend.running()); });
    return count.get_future().get();
  }

  std::atomic<Clock::rep> clockTicks{Clock::now().time_since_epoch().count()};

  test::TempDir dir;
  asio::io_context dataPlane{1};
  asio::io_context management{1};
  asio::executor_work_guard<asio::io_context::executor_type> dataPlaneWork{dataPlane.get_executor()};
  asio::executor_work_guard<asio::io_context::executor_type> managementWork{management.get_executor()};
  asio::thread_pool downloads{1};
  test::FakeBackend backend{management.get_executor()};
  LogStore logs;
  std::unique_ptr<Node> node;
  std::thread dataPlaneThread;
  std::thread managementThread;
  bool stopped = false;
};

TEST_F(NodeTest, EveryListenerGotAPortOfItsOwn) {
  const BoundPorts ports = node->ports();
  EXPECT_GT(ports.management, 0);
  EXPECT_GT(ports.http, 0);
  EXPECT_GT(ports.coap, 0);
  EXPECT_GT(ports.grpc, 0);
  EXPECT_EQ((std::set<int>{ports.management, ports.http, ports.grpc}.size()), 3u);
}

TEST_F(NodeTest, UnknownFunctionIsA404OverHttp) {
  const std::string answer = exchange(node->ports().http, post("/nothing-here", "x"));
  EXPECT_TRUE(answer.starts_with("HTTP/1.1 404")) << answer;
}

TEST_F(NodeTest, DeployedFunctionAnswersOverHttpAndCoap) {
  const std::string deployed = deployEcho();
  ASSERT_TRUE(deployed.starts_with("HTTP/1.1 200")) << deployed;
  EXPECT_NE(deployed.find("http://127.0.0.1:" + std::to_string(node->ports().http) + "/echo"), std::string::npos)
      << deployed;

  // The fake backend's handlers answer with their instance id.
  const std::string answer = exchange(node->ports().http, post("/echo", "over http"));
  EXPECT_TRUE(answer.starts_with("HTTP/1.1 200")) << answer;
  EXPECT_TRUE(answer.ends_with("\r\n\r\necho.1")) << answer;

  // CON POST /echo, message id 0x1234, token 0x7a, payload "over coap".
  const int fd = connectTo(SOCK_DGRAM, node->ports().coap);
  sendAll(fd, std::string("\x41\x02\x12\x34\x7a\xb4"
                          "echo\xff"
                          "over coap",
                          16));
  char datagram[1500];
  const ssize_t n = ::recv(fd, datagram, sizeof datagram, 0);
  ::close(fd);
  ASSERT_GT(n, 5);
  const std::string reply(datagram, static_cast<std::size_t>(n));
  EXPECT_EQ(static_cast<unsigned char>(reply[0]), 0x61u);  // version 1, ACK, token length 1
  EXPECT_EQ(static_cast<unsigned char>(reply[1]), 0x45u);  // 2.05 Content
  EXPECT_EQ(reply.substr(2, 3), "\x12\x34\x7a");           // our message id and token
  EXPECT_TRUE(
      reply.ends_with("\xff"
                      "echo.1"))
      << reply;
}

TEST_F(NodeTest, DeployedFunctionAnswersOverGrpcAndAnUnknownOneIsNotFound) {
  ASSERT_TRUE(deployEcho().starts_with("HTTP/1.1 200"));
  auto module = loadModuleApi<GrpcModule>("grpc");
  ASSERT_TRUE(module) << module.error();
  GrpcRequest request;
  request.host = "127.0.0.1";
  request.port = static_cast<std::uint16_t>(node->ports().grpc);
  request.function = "echo";
  request.payload = "over grpc";
  request.timeout = test::kDeadline;
  const GrpcReply reply = (*module)->sendRequest(request);
  EXPECT_TRUE(reply.ok) << reply.statusName << ": " << reply.body;
  EXPECT_EQ(reply.body, "echo.1");

  request.function = "nothing-here";
  const GrpcReply unknown = (*module)->sendRequest(request);
  EXPECT_FALSE(unknown.ok);
  EXPECT_EQ(unknown.statusName, "NOT_FOUND") << unknown.body;
}

// Hours of idleness on the manual clock scale the function to zero at once
// (in real time it would take its idle_seconds, an hour); the next call
// starts an instance and is held until it is up.
TEST_F(NodeTest, IdleOnTheManualClockScalesToZeroAndACallScalesBackUp) {
  ASSERT_TRUE(deployEcho(R"(,"min_instances":0,"idle_seconds":3600)").starts_with("HTTP/1.1 200"));
  ASSERT_EQ(running(), 1u);
  // An hour passes at every poll: the scaler's first look at the function
  // may come after any one of them.
  ASSERT_TRUE(test::eventually([&] {
    advance(61min);
    return running() == 0;
  })) << "not scaled to zero after its idle time";

  const std::string answer = exchange(node->ports().http, post("/echo", "wake up"));
  EXPECT_TRUE(answer.starts_with("HTTP/1.1 200")) << answer;
  EXPECT_TRUE(answer.ends_with("\r\n\r\necho.2")) << answer;
  EXPECT_EQ(running(), 1u);
}

TEST_F(NodeTest, StopLeavesNoWorkOnTheLoopsWhateverClientsHoldOpen) {
  ASSERT_TRUE(deployEcho().starts_with("HTTP/1.1 200"));
  // A keep-alive connection after its answer, a request whose body never
  // comes, and an idle management connection: none may keep a loop alive.
  const int idle = connectTo(SOCK_STREAM, node->ports().http);
  sendAll(idle, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi");
  char buffer[1024];
  ASSERT_GT(::recv(idle, buffer, sizeof buffer, 0), 0);
  // 100 Continue: the server has read the header and waits for the body.
  const int half = connectTo(SOCK_STREAM, node->ports().http);
  sendAll(half, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\nExpect: 100-continue\r\n\r\n");
  const ssize_t n = ::recv(half, buffer, sizeof buffer, 0);
  ASSERT_GT(n, 0);
  ASSERT_TRUE(std::string_view(buffer, static_cast<std::size_t>(n)).starts_with("HTTP/1.1 100"));
  sendAll(half, "only part");
  const int managementIdle = connectTo(SOCK_STREAM, node->ports().management);

  EXPECT_TRUE(stop()) << "a loop still had work after Node::stop()";
  EXPECT_EQ(backend.running(), 0u);
  for (int fd : {idle, half, managementIdle}) ::close(fd);
}

TEST_F(NodeTest, StopCancelsARestartWaitingOutItsBackoff) {
  ASSERT_TRUE(deployEcho().starts_with("HTTP/1.1 200"));
  asio::post(management, [this] { backend.exit("echo.1"); });
  const auto echoLogs = [this] {
    return exchange(node->ports().management,
                    "GET /logs?name=echo HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
  };
  ASSERT_TRUE(test::eventually([&] {
    return echoLogs().find("restart 1 of an instance in 3600000 ms") != std::string::npos;
  })) << echoLogs();

  EXPECT_TRUE(stop()) << "the restart's hour-long backoff kept the management loop alive";
  EXPECT_EQ(backend.running(), 0u);
}

TEST_F(NodeTest, StartRestoresAndStopEndsTheBackendsPreparation) {
  const auto readiness = [this] {
    return exchange(node->ports().management, "GET /readyz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
  };
  ASSERT_TRUE(test::eventually([&] { return readiness().starts_with("HTTP/1.1 200"); })) << readiness();
  ASSERT_TRUE(deployEcho().starts_with("HTTP/1.1 200"));

  EXPECT_TRUE(stop()) << "the backend's preparation kept the management loop alive";
  EXPECT_EQ(backend.cancelCalls, 1);
  EXPECT_TRUE(backend.prepareEnded);
}

}  // namespace
}  // namespace tinyfaas
