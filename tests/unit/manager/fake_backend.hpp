#pragma once
// A Backend whose instances are FakeHandlers on the test's io_context: it
// starts in microseconds, can be told to fail or to come up unhealthy, and
// lets a test end an instance as if its process had died.

#include <memory>
#include <set>
#include <string>
#include <vector>

#include <boost/asio/any_io_executor.hpp>

#include "backend/backend.hpp"
#include "fake_handler.hpp"
#include "util/async_sync.hpp"

namespace tinyfaas::test {

class FakeBackend final : public Backend {
 public:
  struct Record {
    InstanceSpec spec;
    ExitCallback onExit;
    std::shared_ptr<FakeHandler> handler;
    bool stopped = false;
    bool exited = false;
    std::size_t inFlightAtStop = 0;  // calls the instance was still serving when stopped
  };

  explicit FakeBackend(boost::asio::any_io_executor executor) : executor_(std::move(executor)) {}
  ~FakeBackend() override;

  std::string describe() const override { return "fake"; }
  boost::asio::awaitable<boost::system::result<std::unique_ptr<Instance>, std::string>> start(
      InstanceSpec spec, ExitCallback onExit) override;
  boost::asio::awaitable<void> stop(Instance& instance) override;
  // Returns at once, or with holdPrepare only once cancel() was called (a
  // runtime image build that outlasts the node's life).
  boost::asio::awaitable<void> prepare() override;
  void cancel() override;
  void keepWarm(const std::set<Runtime>& runtimes) override { warm = runtimes; }

  // The instance ends by itself: its socket goes away, then the manager hears.
  void exit(const std::string& instanceId, std::string how = "exited with status 1");

  Record* find(const std::string& instanceId);
  std::size_t running() const;

  // The next this many starts return an error.
  int failStarts = 0;
  std::set<Runtime> warm;  // what the manager last asked keepWarm() for
  // The next this many instances start, then exit at once ("exited with
  // status 1"), as a handler whose function does not load does.
  int exitOnStart = 0;
  // New instances answer /health with 503.
  bool startUnhealthy = false;
  std::vector<std::shared_ptr<Record>> instances;  // every instance ever started, in order
  // What new instances report as hostPid() (0: not known).
  pid_t instancePid = 0;
  bool holdPrepare = false;
  bool prepareEnded = false;
  int cancelCalls = 0;

 private:
  static void exitRecord(Record& record, std::string how);
  boost::asio::any_io_executor executor_;
  AsyncEvent cancelled_{executor_};
};

}  // namespace tinyfaas::test
