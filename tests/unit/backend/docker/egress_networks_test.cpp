// The per-function egress networks against a fake engine: created once for
// instances that start together, removed with the last one only.

#include "backend/docker/egress_networks.hpp"

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

#include "fake_engine.hpp"
#include "test_support.hpp"

namespace tinyfaas::test {
namespace {

namespace asio = boost::asio;

class EgressNetworksTest : public ::testing::Test {
 protected:
  void TearDown() override { engine->stop(); }

  std::vector<std::string> calls() const {
    std::vector<std::string> out;
    for (const auto& request : engine->requests()) out.push_back(request.method + " " + request.target);
    return out;
  }

  asio::io_context io;
  TempDir dir;
  std::shared_ptr<FakeEngine> engine = FakeEngine::start(io.get_executor(), dir / "docker.sock");
  docker::EngineClient client{io.get_executor(), dir / "docker.sock"};
  docker::EgressNetworks networks{client, "0123456789ab"};
};

// Two instances starting at once: the second waits for the first's create
// instead of creating the network again.
TEST_F(EgressNetworksTest, InstancesStartingTogetherCreateOneNetworkAndTheLastRemovesIt) {
  engine->answer(201, R"({"Id":"n1"})");
  int acquired = 0;
  for (int i = 0; i < 2; ++i) {
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
          auto ok = co_await networks.acquire("echo");
          if (ok) ++acquired;
        },
        [](std::exception_ptr e) {
          if (e) std::rethrow_exception(e);
        });
  }
  ASSERT_TRUE(runUntil(io, [&] { return acquired == 2; }));
  EXPECT_EQ(calls(), (std::vector<std::string>{"POST /v1.41/networks/create"}));
  const auto body = engine->requests().front().body;
  EXPECT_NE(body.find(R"("Name":"tinyfaas-0123456789ab-echo")"), std::string::npos) << body;

  run(io, networks.release("echo"));
  EXPECT_EQ(calls().size(), 1u) << "removed while an instance still uses it";
  engine->answer(204, "");
  run(io, networks.release("echo"));
  EXPECT_EQ(calls().back(), "DELETE /v1.41/networks/tinyfaas-0123456789ab-echo");
}

TEST_F(EgressNetworksTest, AFailedCreateIsAnErrorAndTheNextStartTriesAgain) {
  engine->answer(500, R"({"message":"no free address pool"})");
  auto failed = run(io, networks.acquire("echo"));
  ASSERT_FALSE(failed);
  EXPECT_NE(failed.error().find("no free address pool"), std::string::npos) << failed.error();
  // 409: left by an earlier stop that failed, so this node's; reused.
  engine->answer(409, R"({"message":"network with name tinyfaas-0123456789ab-echo already exists"})");
  EXPECT_TRUE(run(io, networks.acquire("echo")));
  EXPECT_EQ(calls(), (std::vector<std::string>{"POST /v1.41/networks/create", "POST /v1.41/networks/create"}));
}

}  // namespace
}  // namespace tinyfaas::test
