#pragma once
// A FunctionManager wired to a FakeBackend, a Router and a Proxy, with the
// management and data-plane sides on one io_context driven by the test.

#include <gtest/gtest.h>

#include <set>

#include <boost/asio/io_context.hpp>

#include "fake_backend.hpp"
#include "manager/function_manager.hpp"
#include "manager/log_store.hpp"
#include "proxy/proxy.hpp"
#include "proxy/router.hpp"
#include "test_support.hpp"
#include "zip_builder.hpp"

namespace tinyfaas::test {

using namespace std::chrono_literals;

inline std::string pythonZip(const std::string& prefix = "") {
  return ZipBuilder().file(prefix + "fn.py", "def fn(input, headers):\n    return input\n").build();
}

class ManagerFixture : public ::testing::Test {
 protected:
  ManagerFixture() {
    options.stateDir = dir / "state";
    options.healthTimeout = 5s;
    options.drainTimeout = 5s;
    options.restartBackoffMin = 10ms;
    options.restartBackoffMax = 40ms;
  }

  // Built on first use so a test can change `options` first.
  FunctionManager& manager() {
    if (!manager_) {
      manager_ =
          std::make_unique<FunctionManager>(io.get_executor(), io.get_executor(), router, backend, logs, options);
      auto prepared = manager_->prepareStateDir();
      EXPECT_TRUE(prepared) << prepared.error();
    }
    return *manager_;
  }

  void TearDown() override {
    if (manager_) run(io, manager_->removeAll());
    for (auto& record : backend.instances) record->handler->openGate();
    runFor(io, 20ms);
  }

  boost::system::result<void, DeployError> deploy(const std::string& name, int threads, std::string zip = pythonZip(),
                                                  std::string subfolder = "", Runtime runtime = Runtime::python3) {
    FunctionConfig config;
    config.name = name;
    config.runtime = runtime;
    config.threads = threads;
    return run(io, manager().deploy(std::move(config), std::move(zip), std::move(subfolder)));
  }

  // The instance ids the router hands out for `name` (empty: unknown or none).
  std::set<std::string> routed(const std::string& name) {
    std::set<std::string> ids;
    for (int i = 0; i < 16; ++i) {
      auto pick = router.pick(name);
      if (pick.upstream) ids.insert(pick.upstream->instanceId());
    }
    return ids;
  }

  CallResult call(const std::string& name, std::string payload = "") {
    return run(io, proxy.invoke(Invocation{name, std::move(payload), {}}));
  }

  std::set<std::string> stoppedIds() const {
    std::set<std::string> ids;
    for (const auto& record : backend.instances)
      if (record->stopped) ids.insert(record->spec.instanceId);
    return ids;
  }

  boost::asio::io_context io;
  TempDir dir;
  Router router;
  Proxy proxy{io.get_executor(), router};
  FakeBackend backend{io.get_executor()};
  LogStore logs;
  ManagerOptions options;
  std::unique_ptr<FunctionManager> manager_;
};

}  // namespace tinyfaas::test
