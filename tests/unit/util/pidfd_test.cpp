#include "util/pidfd.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <memory>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace tinyfaas {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;

// What hung deploys (a pidfd "ready" while its process ran): a pipe with a
// readiness event still queued is closed, and a pidfd registered at once
// takes over the pipe's reactor state, and with it that event.
TEST(AwaitProcessEnd, AReadinessEventMeantForAClosedDescriptorIsNotAnEnd) {
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    pause();
    _exit(0);
  }
  asio::io_context io;
  int trigger[2], stale[2];
  ASSERT_EQ(pipe2(trigger, O_CLOEXEC), 0);
  ASSERT_EQ(pipe2(stale, O_CLOEXEC), 0);
  asio::posix::stream_descriptor triggerEnd(io, trigger[0]);
  auto staleEnd = std::make_unique<asio::posix::stream_descriptor>(io, stale[0]);
  bool killed = false;
  bool ended = false;
  bool endedAfterKill = false;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        auto pending = triggerEnd.async_wait(asio::posix::stream_descriptor::wait_read, asio::use_awaitable);
        // Both become ready in one epoll round, the trigger first.
        EXPECT_EQ(write(trigger[1], "x", 1), 1);
        EXPECT_EQ(write(stale[1], "x", 1), 1);
        co_await std::move(pending);
        staleEnd.reset();
        asio::posix::stream_descriptor pidfd(io, static_cast<int>(syscall(SYS_pidfd_open, child, 0)));
        const auto ec = co_await awaitProcessEnd(pidfd);
        EXPECT_FALSE(ec) << ec.message();
        ended = true;
        endedAfterKill = killed;
      },
      asio::detached);
  asio::steady_timer killer(io, 300ms);
  killer.async_wait([&](boost::system::error_code) {
    killed = true;
    kill(child, SIGKILL);
  });
  io.run_for(10s);
  if (!killed) kill(child, SIGKILL);
  waitpid(child, nullptr, 0);
  for (int fd : {trigger[1], stale[1]}) close(fd);
  EXPECT_TRUE(ended) << "the wait never completed";
  EXPECT_TRUE(endedAfterKill) << "the wait completed while the process was running";
}

}  // namespace
}  // namespace tinyfaas
