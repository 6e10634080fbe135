#pragma once
// Following a running instance's container: its output into the function's
// logs, its end (seen twice, see docker_backend.hpp: a pidfd on the handler
// process at once, then the engine's /wait with the exit status and whether
// the OOM killer struck) and, once the handler has bound its socket, the
// lock of its socket directory.

#include <filesystem>
#include <memory>
#include <string>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>

#include "backend/backend.hpp"
#include "backend/docker/engine_client.hpp"
#include "core/log_sink.hpp"
#include "util/async_sync.hpp"

namespace tinyfaas::docker {

// Shared by the instance, its watcher and its log pump, so that whichever
// ends last frees it. Lives on the backend's thread.
struct Container {
  explicit Container(const boost::asio::any_io_executor& executor) : ended(executor), logsDone(executor) {}
  std::string id;
  std::string name;
  std::string function;
  std::string instanceId;
  std::filesystem::path socketDir;
  bool egress = false;
  bool stopping = false;
  bool socketReady = false;  // its handler bound the socket: past start-up
  bool notified = false;     // onExit was called
  ExitCallback onExit;
  AsyncEvent ended;     // set once the watcher saw the end
  AsyncEvent logsDone;  // set once the log stream ended
  // The handler process itself, watched through a pidfd: it tells of a
  // death ~50-150 ms before the engine's /wait does.
  std::unique_ptr<boost::asio::posix::stream_descriptor> process;
  pid_t pid = 0;  // that process, once watched
  std::shared_ptr<StreamCanceller> waitCanceller = std::make_shared<StreamCanceller>();
  std::shared_ptr<StreamCanceller> logCanceller = std::make_shared<StreamCanceller>();
};

// Lives on its executor's thread, as do the containers it follows.
class ContainerWatcher {
 public:
  ContainerWatcher(boost::asio::any_io_executor executor, EngineClient& client, LogSink& logs)
      : executor_(executor), client_(client), logs_(logs), following_(std::move(executor)) {}

  // Starts following a container that was just started. onExit is called
  // once, unless `stopping` was set first.
  void follow(std::shared_ptr<Container> container);
  // Locks its socket directory once its handler binds the socket, when that
  // had not happened yet: a python standby binds it only when it is handed
  // its function, possibly after follow()'s wait gave up.
  void lockOnceBound(std::shared_ptr<Container> container);

 private:
  boost::asio::awaitable<void> pumpLogs(std::shared_ptr<Container> container);
  boost::asio::awaitable<void> watch(std::shared_ptr<Container> container);
  boost::asio::awaitable<void> watchProcess(std::shared_ptr<Container> container);
  void notifyExit(const std::shared_ptr<Container>& container, std::string how);
  boost::asio::awaitable<void> lockSocketDir(std::shared_ptr<Container> container);

  boost::asio::any_io_executor executor_;
  EngineClient& client_;
  LogSink& logs_;
  // The coroutines following containers. Each ends with its container
  // (stopped by the backend, or ended by itself): nothing needs cancelling.
  WaitGroup following_;
};

}  // namespace tinyfaas::docker
