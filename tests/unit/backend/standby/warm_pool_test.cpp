#include "backend/standby/warm_pool.hpp"

#include <gtest/gtest.h>
#include <sys/socket.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/write.hpp>

#include "backend/standby/handler_control.hpp"
#include "test_support.hpp"

namespace tinyfaas {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;

// Standbys without processes: what the pool decides, not what runs.
class FakeStandby final : public Standby {
 public:
  FakeStandby(Runtime launcher, asio::local::stream_protocol::socket control, std::string id)
      : Standby(launcher, std::move(control)), id(std::move(id)) {}
  bool ended() const override { return dead; }
  void onEnd(ExitCallback callback) override { onExit = std::move(callback); }
  void die(std::string how) {
    dead = true;
    onExit(std::move(how));
  }
  std::string id;
  bool dead = false;
  ExitCallback onExit;
};

std::string idOf(const std::unique_ptr<Standby>& standby) { return static_cast<FakeStandby&>(*standby).id; }

class WarmPoolTest : public ::testing::Test {
 protected:
  WarmPool& make(std::size_t perRuntime) {
    auto start =
        [this](Runtime launcher) -> asio::awaitable<boost::system::result<std::unique_ptr<Standby>, std::string>> {
      if (failStarts) co_return std::string("no interpreter");
      started.push_back(launcher);
      auto channel = openControlChannel(io.get_executor());
      if (!channel) co_return channel.error();
      if (greets && ::write(channel->handlerEnd.get(), "standby\n", 8) != 8) co_return std::string("write");
      handlerEnds.push_back(std::move(channel->handlerEnd));
      auto standby = std::make_unique<FakeStandby>(launcher, std::move(channel->daemonEnd),
                                                   "standby-" + std::to_string(started.size()));
      made.push_back(standby.get());
      co_return std::unique_ptr<Standby>(std::move(standby));
    };
    auto end = [this](std::unique_ptr<Standby> standby) -> asio::awaitable<void> {
      ended.push_back(idOf(standby));
      co_return;
    };
    pool = std::make_unique<WarmPool>(io.get_executor(), perRuntime, start, end);
    asio::co_spawn(io, pool->run(), [this](std::exception_ptr) { finished = true; });
    return *pool;
  }

  asio::io_context io;
  std::unique_ptr<WarmPool> pool;
  std::vector<Runtime> started;
  std::vector<FakeStandby*> made;
  std::vector<UniqueFd> handlerEnds;  // the standbys' side of their control sockets
  bool greets = true;                 // they say "standby" at once
  std::vector<std::string> ended;
  bool failStarts = false;
  bool finished = false;
};

TEST_F(WarmPoolTest, KeepsStandbysOnlyForTheRuntimesInUse) {
  auto& p = make(2);
  test::runFor(io, 20ms);
  EXPECT_TRUE(started.empty()) << "an idle node runs no standby";
  p.keep({Runtime::nodejs, Runtime::go});
  ASSERT_TRUE(test::runUntil(io, [&] { return p.size() == 4; }));
  // go handlers are started by the binary runtime's standby.
  EXPECT_EQ(std::count(started.begin(), started.end(), Runtime::binary), 2);
  EXPECT_EQ(std::count(started.begin(), started.end(), Runtime::nodejs), 2);
  EXPECT_EQ(p.take(Runtime::python3), nullptr);
  p.keep({Runtime::go});
  ASSERT_TRUE(test::runUntil(io, [&] { return ended.size() == 2; }));
  EXPECT_EQ(p.size(), 2u);
  EXPECT_EQ(p.take(Runtime::nodejs), nullptr);
  p.stop();
  ASSERT_TRUE(test::runUntil(io, [&] { return finished; }));
  EXPECT_EQ(ended.size(), 4u) << "stop() ends every standby";
}

TEST_F(WarmPoolTest, ATakenStandbyIsReplacedOnlyAfterItsHandover) {
  auto& p = make(1);
  p.keep({Runtime::python3});
  ASSERT_TRUE(test::runUntil(io, [&] { return p.size() == 1; }));
  auto standby = p.take(Runtime::python3);
  ASSERT_NE(standby, nullptr);
  EXPECT_EQ(p.take(Runtime::python3), nullptr) << "a standby is handed out once";
  test::runFor(io, 20ms);
  EXPECT_EQ(started.size(), 1u) << "starting another would hold up the handover";
  p.replenish();
  ASSERT_TRUE(test::runUntil(io, [&] { return p.size() == 1; }));
  EXPECT_EQ(started.size(), 2u);
  auto next = p.take(Runtime::python3);
  ASSERT_NE(next, nullptr);
  EXPECT_NE(idOf(next), idOf(standby)) << "never the same standby twice";
  p.stop();
  ASSERT_TRUE(test::runUntil(io, [&] { return finished; }));
}

TEST_F(WarmPoolTest, AStandbyThatEndsByItselfIsReplacedAfterABackoff) {
  auto& p = make(1);
  p.keep({Runtime::nodejs});
  ASSERT_TRUE(test::runUntil(io, [&] { return p.size() == 1; }));
  // Its interpreter died before any function came.
  made.front()->die("exited with status 1");
  EXPECT_EQ(p.take(Runtime::nodejs), nullptr) << "a dead standby is never handed out";
  const auto before = std::chrono::steady_clock::now();
  ASSERT_TRUE(test::runUntil(
      io, [&] { return ended.size() == 1 && started.size() == 2; }, 5s));
  EXPECT_EQ(ended.front(), "standby-1");
  EXPECT_GE(std::chrono::steady_clock::now() - before, 400ms) << "a broken runtime must not spin";
  EXPECT_NE(p.take(Runtime::nodejs), nullptr);
  p.stop();
  ASSERT_TRUE(test::runUntil(io, [&] { return finished; }));
}

TEST_F(WarmPoolTest, OnlyAStandbyThatSaidItIsUpIsHandedOut) {
  greets = false;
  auto& p = make(1);
  p.keep({Runtime::python3});
  ASSERT_TRUE(test::runUntil(io, [&] { return p.size() == 1; }));
  EXPECT_EQ(p.take(Runtime::python3), nullptr) << "still booting: a start of its own is no slower";
  ASSERT_EQ(::write(handlerEnds.front().get(), "standby\n", 8), 8);
  auto standby = p.take(Runtime::python3);
  ASSERT_NE(standby, nullptr);
  // The greeting is taken: what the handler says next is its "ready".
  ASSERT_EQ(::write(handlerEnds.front().get(), "ready\n", 6), 6);
  EXPECT_TRUE(test::run(io, awaitReady(standby->control, 5s)));
  p.stop();
  ASSERT_TRUE(test::runUntil(io, [&] { return finished; }));
}

TEST_F(WarmPoolTest, StartFailuresBackOff) {
  failStarts = true;
  auto& p = make(1);
  p.keep({Runtime::binary});
  test::runFor(io, 300ms);
  EXPECT_TRUE(started.empty());
  failStarts = false;
  // The first retry comes after half a second, not at once.
  ASSERT_TRUE(test::runUntil(
      io, [&] { return p.size() == 1; }, 5s));
  p.stop();
  ASSERT_TRUE(test::runUntil(io, [&] { return finished; }));
}

TEST(Standby, OnlyFunctionsWithoutStartTimeVariablesTakeOne) {
  InstanceSpec spec;
  spec.runtime = Runtime::python3;
  spec.env = {"GREETING=hi", "NODE_ENV=test"};
  EXPECT_TRUE(standbyCanServe(spec));
  spec.env.push_back("PYTHONHASHSEED=1");
  EXPECT_FALSE(standbyCanServe(spec)) << "the standby's interpreter started without it";
  spec.env = {"LD_PRELOAD=/x.so"};
  EXPECT_FALSE(standbyCanServe(spec));
  spec.runtime = Runtime::binary;  // fn.sh is started after the handover
  EXPECT_TRUE(standbyCanServe(spec));
}

TEST(HandlerControl, AContainersHandlerConnectsOnceAndTheListenerIsGone) {
  asio::io_context io;
  test::TempDir dir;
  const auto path = dir / "control.sock";
  auto listener = listenForControl(io.get_executor(), path);
  ASSERT_TRUE(listener) << listener.error();
  asio::local::stream_protocol::socket handler(io);
  handler.connect(asio::local::stream_protocol::endpoint(path.string()));
  auto accepted = test::run(io, acceptControl(*listener, path, 5s));
  ASSERT_TRUE(accepted);
  EXPECT_FALSE(std::filesystem::exists(path)) << "nothing else can connect";
  ASSERT_EQ(::write(handler.native_handle(), "standby\n", 8), 8);
  ASSERT_TRUE(test::runUntil(io, [&] { return saidStandby(*accepted, false); }));

  // A handler that never connects: no control socket, and the listener goes too.
  auto unused = listenForControl(io.get_executor(), path);
  ASSERT_TRUE(unused);
  EXPECT_FALSE(test::run(io, acceptControl(*unused, path, 50ms)));
  EXPECT_FALSE(std::filesystem::exists(path));
}

TEST(HandlerControl, AssignmentRecordsEndWithAnEmptyOne) {
  auto message = assignmentMessage("/code", "", {{"A", "1"}, {"B", ""}});
  ASSERT_TRUE(message);
  EXPECT_EQ(*message, std::string("/code\0-\0A=1\0B=\0\0", 16));
  EXPECT_EQ(*assignmentMessage("/code", "/code/.tinyfaas-handler", {}),
            std::string("/code\0/code/.tinyfaas-handler\0\0", 31));
  // A NUL would end the records early and hide the rest from the handler.
  EXPECT_FALSE(assignmentMessage("/code", "", {{"A", std::string("x\0y", 3)}}));
  EXPECT_FALSE(assignmentMessage("", "", {}));
}

TEST(HandlerControl, ReadyOnlyWhenTheHandlerSaysSo) {
  asio::io_context io;
  for (const std::string said : {"ready\n", "nonsense\n", ""}) {
    auto channel = openControlChannel(io.get_executor());
    ASSERT_TRUE(channel);
    if (!said.empty()) {
      ASSERT_EQ(::write(channel->handlerEnd.get(), said.data(), said.size()), ssize_t(said.size()));
    }
    channel->handlerEnd.reset();  // closed: EOF after what it said
    EXPECT_EQ(test::run(io, awaitReady(channel->daemonEnd, 5s)), said == "ready\n") << said;
  }
  // A handler that says nothing and stays: the wait ends at its limit.
  auto channel = openControlChannel(io.get_executor());
  ASSERT_TRUE(channel);
  const auto before = std::chrono::steady_clock::now();
  EXPECT_FALSE(test::run(io, awaitReady(channel->daemonEnd, 100ms)));
  EXPECT_GE(std::chrono::steady_clock::now() - before, 100ms);
}

}  // namespace
}  // namespace tinyfaas
