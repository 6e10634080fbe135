#include "backend/docker/container_watch.hpp"

#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <iterator>
#include <optional>

#include <boost/asio/steady_timer.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "backend/docker/engine_calls.hpp"
#include "backend/docker/log_demux.hpp"
#include "core/async.hpp"
#include "util/pidfd.hpp"

namespace tinyfaas::docker {

namespace asio = boost::asio;
namespace http = boost::beast::http;
namespace fs = std::filesystem;
using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

// How long a lost connection to the engine is retried before an instance is
// given up as lost (and restarted by the manager).
constexpr int kMaxEngineFailures = 30;
constexpr std::chrono::seconds kLogDrainTimeout{2};
constexpr std::chrono::seconds kSocketLockTimeout{120};

asio::awaitable<void> sleepFor(Clock::duration d) {
  asio::steady_timer timer(co_await asio::this_coro::executor, d);
  co_await timer.async_wait(useTuple);
}

}  // namespace

void ContainerWatcher::follow(std::shared_ptr<Container> container) {
  following_.spawn(executor_, pumpLogs(container));
  following_.spawn(executor_, watch(container));
  following_.spawn(executor_, lockSocketDir(std::move(container)));
}

void ContainerWatcher::lockOnceBound(std::shared_ptr<Container> container) {
  if (!container->socketReady) following_.spawn(executor_, lockSocketDir(std::move(container)));
}

asio::awaitable<void> ContainerWatcher::pumpLogs(std::shared_ptr<Container> container) {
  LogSink& logs = logs_;
  // Containers run without a TTY, so stdout and stderr come multiplexed.
  // Read per line: a standby's lines are its function's from its handover on.
  LogDemuxer demux(LogDemuxer::Framing::multiplexed, [&logs, container](int, std::string_view line) {
    logs.append(container->function, container->instanceId, line);
  });
  RequestOptions options;
  // Named, not a temporary in the co_await expression: GCC 12 destroys
  // such temporaries twice.
  std::function<void(std::string_view)> onData = [&demux](std::string_view bytes) { demux.feed(bytes); };
  auto streamed =
      co_await client_.stream(http::verb::get, "/containers/" + container->id + "/logs?follow=1&stdout=1&stderr=1",
                              onData, options, container->logCanceller);
  demux.finish();
  if (demux.broken()) spdlog::warn("log stream of {} is garbled; the rest is lost", container->instanceId);
  if (!streamed && !container->stopping) spdlog::debug("log stream of {}: {}", container->instanceId, streamed.error());
  container->logsDone.set();
}

void ContainerWatcher::notifyExit(const std::shared_ptr<Container>& c, std::string how) {
  if (c->notified || c->stopping || !c->onExit) return;
  c->notified = true;
  auto onExit = std::move(c->onExit);
  c->onExit = nullptr;
  onExit(std::move(how));
}

asio::awaitable<void> ContainerWatcher::watchProcess(std::shared_ptr<Container> c) {
  auto inspected = co_await client_.request(http::verb::get, "/containers/" + c->id + "/json");
  if (!inspected || !inspected->is({200}) || c->ended.isSet() || c->stopping) co_return;
  auto state = json::parse(inspected->body, nullptr, false);
  if (!state.is_object() || !state.contains("State") || !state["State"].is_object()) co_return;
  const auto pid = state["State"].value("Pid", std::int64_t{0});
  if (pid <= 0) co_return;
  // Without the engine's PID namespace (tinyfaas itself in a container) or
  // on old kernels this fails, and the engine's /wait alone tells.
  const int fd = static_cast<int>(syscall(SYS_pidfd_open, static_cast<pid_t>(pid), 0));
  if (fd < 0) co_return;
  // The pid may have been reused since the inspect: the process must be in
  // the container's cgroup.
  std::ifstream cgroup("/proc/" + std::to_string(pid) + "/cgroup");
  const std::string groups((std::istreambuf_iterator<char>(cgroup)), std::istreambuf_iterator<char>());
  if (groups.find(c->id) == std::string::npos) {
    ::close(fd);
    co_return;
  }
  c->process = std::make_unique<asio::posix::stream_descriptor>(executor_, fd);
  c->pid = static_cast<pid_t>(pid);
  const auto ec = co_await awaitProcessEnd(*c->process);
  // Before its socket was bound, a death is a failed start: the engine's
  // account with the instance's last output is what the manager reports.
  if (ec || c->ended.isSet() || c->stopping || !c->socketReady) co_return;
  notifyExit(c, "ended (its handler process died)");
}

asio::awaitable<void> ContainerWatcher::watch(std::shared_ptr<Container> c) {
  std::string how;
  std::optional<std::int64_t> exitCode;
  int engineFailures = 0;
  following_.spawn(executor_, watchProcess(c));
  while (!c->stopping) {
    std::string body;
    RequestOptions options;
    options.maxBodyBytes = kMaxWaitBody;
    // The long-poll: the engine answers the header at once and the body when
    // the container stops.
    std::function<void(std::string_view)> onData = [&body](std::string_view bytes) {
      if (body.size() + bytes.size() <= kMaxWaitBody) body.append(bytes);
    };
    auto waited = co_await client_.stream(http::verb::post, "/containers/" + c->id + "/wait?condition=not-running",
                                          onData, options, c->waitCanceller);
    if (c->stopping) break;
    // 200 it stopped (StatusCode in the body); 404 removed (not by us).
    if (waited && waited->is({200})) {
      auto parsed = json::parse(body, nullptr, false);
      if (parsed.is_object() && parsed.contains("StatusCode") && parsed["StatusCode"].is_number_integer()) {
        exitCode = parsed["StatusCode"].get<std::int64_t>();
        break;
      }
    } else if (waited && waited->is({404})) {
      how = "disappeared (its container was removed outside tinyfaas)";
      break;
    }
    // The connection broke or the answer was odd: ask how the container is.
    auto inspected = co_await client_.request(http::verb::get, "/containers/" + c->id + "/json");
    if (c->stopping) break;
    if (inspected && inspected->is({200})) {
      engineFailures = 0;
      auto state = json::parse(inspected->body, nullptr, false);
      if (state.is_object() && state.contains("State") && state["State"].is_object() &&
          !state["State"].value("Running", false)) {
        exitCode = state["State"].value("ExitCode", std::int64_t{-1});
        break;
      }
    } else if (inspected && inspected->is({404})) {
      how = "disappeared (its container was removed outside tinyfaas)";
      break;
    } else if (++engineFailures >= kMaxEngineFailures) {
      how = "was lost: the Docker engine stopped answering (" + (inspected ? inspected->message() : inspected.error()) +
            ")";
      break;
    }
    co_await sleepFor(std::chrono::seconds(1));
  }

  spdlog::debug("container of {} stopped: {}", c->instanceId, exitCode ? describeExit(*exitCode) : how);
  // The output first: a failed start quotes the instance's last lines.
  if (!c->logsDone.isSet()) {
    asio::steady_timer guard(executor_, kLogDrainTimeout);
    guard.async_wait([c](boost::system::error_code ec) {
      if (!ec) c->logCanceller->cancel();
    });
    co_await c->logsDone.wait();
    guard.cancel();
  }
  if (exitCode && (!c->stopping || c->notified)) {
    how = describeExit(*exitCode);
    auto inspected = co_await client_.request(http::verb::get, "/containers/" + c->id + "/json");
    if (inspected && inspected->is({200})) {
      auto state = json::parse(inspected->body, nullptr, false);
      if (state.is_object() && state.contains("State") && state["State"].is_object() &&
          state["State"].value("OOMKilled", false))
        how = "was killed (out of memory)";
    }
  }
  c->ended.set();
  if (c->process) c->process->close();
  if (c->notified) {
    // The manager heard of the death from the pidfd; this is how it died.
    if (!how.empty()) {
      spdlog::info("container of {} {}", c->instanceId, how);
      logs_.append(c->function, c->instanceId, "tinyfaas: container " + how);
    }
  } else {
    notifyExit(c, std::move(how));
  }
}

asio::awaitable<void> ContainerWatcher::lockSocketDir(std::shared_ptr<Container> c) {
  // Once the handler has bound its socket the directory need not be
  // writable any more; locking it keeps a function from filling the host's
  // disk through its only writable host directory.
  const fs::path socket = handlerSocketPath(c->socketDir);
  const auto deadline = Clock::now() + kSocketLockTimeout;
  auto step = std::chrono::milliseconds(5);
  while (!c->ended.isSet() && !c->stopping && Clock::now() < deadline) {
    std::error_code ec;
    if (fs::exists(socket, ec)) {
      c->socketReady = true;
      if (geteuid() == 0) {
        if (::chown(c->socketDir.c_str(), 0, 0) == 0) ::chmod(c->socketDir.c_str(), 0755);
      } else {
        ::chmod(c->socketDir.c_str(), 0555);
      }
      co_return;
    }
    co_await sleepFor(step);
    step = std::min(step * 2, std::chrono::milliseconds(100));
  }
}

}  // namespace tinyfaas::docker
