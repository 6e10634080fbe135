#include "util/async_sync.hpp"

#include <gtest/gtest.h>

#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "test_support.hpp"

namespace tinyfaas {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;

// Lets every handler that is ready run (a few rounds of posts), without
// waiting for timers: what "does not happen" means in these tests.
void settle(asio::io_context& io) {
  for (int i = 0; i < 100; ++i) {
    io.restart();
    if (io.poll() == 0) return;
  }
}

// Sets `done` once `step` returns.
asio::awaitable<void> flagAfter(asio::awaitable<void> step, bool& done) {
  co_await std::move(step);
  done = true;
}

TEST(AsyncMutex, ASecondLockerWaitsUntilTheFirstGuardGoes) {
  asio::io_context io;
  AsyncMutex mutex;
  std::vector<std::string> trace;
  auto holder = [&]() -> asio::awaitable<void> {
    auto guard = co_await mutex.lock();
    trace.push_back("first in");
    asio::steady_timer pause(io, 20ms);
    co_await pause.async_wait(asio::use_awaitable);
    trace.push_back("first out");
  };
  auto second = [&]() -> asio::awaitable<void> {
    auto guard = co_await mutex.lock();
    trace.push_back("second in");
  };
  asio::co_spawn(io, holder(), asio::detached);
  asio::co_spawn(io, second(), asio::detached);
  settle(io);
  EXPECT_EQ(trace, (std::vector<std::string>{"first in"}));
  EXPECT_TRUE(mutex.isLocked());
  ASSERT_TRUE(test::runUntil(io, [&] { return trace.size() == 3; }));
  EXPECT_EQ(trace, (std::vector<std::string>{"first in", "first out", "second in"}));
  EXPECT_FALSE(mutex.isLocked());
}

TEST(AsyncMutex, WaitersGetItInTheOrderTheyAsked) {
  asio::io_context io;
  AsyncMutex mutex;
  std::vector<int> order;
  std::optional<AsyncMutex::Guard> first;
  test::run(io, [&]() -> asio::awaitable<void> { first.emplace(co_await mutex.lock()); }());
  for (int i = 0; i < 4; ++i) {
    asio::co_spawn(
        io,
        [&, i]() -> asio::awaitable<void> {
          auto guard = co_await mutex.lock();
          order.push_back(i);
        },
        asio::detached);
  }
  settle(io);
  EXPECT_TRUE(order.empty());
  first.reset();
  ASSERT_TRUE(test::runUntil(io, [&] { return order.size() == 4; }));
  EXPECT_EQ(order, (std::vector<int>{0, 1, 2, 3}));
  EXPECT_FALSE(mutex.isLocked());
}

// A cancelled waiter (its task group cancelled) must neither hold the mutex
// nor stay queued: the next unlock goes to the waiter behind it.
TEST(AsyncMutex, ACancelledWaiterThrowsAndIsSkipped) {
  asio::io_context io;
  AsyncMutex mutex;
  std::optional<AsyncMutex::Guard> first;
  test::run(io, [&]() -> asio::awaitable<void> { first.emplace(co_await mutex.lock()); }());
  asio::cancellation_signal cancel;
  std::exception_ptr cancelledError;
  bool cancelledDone = false, cancelledGotIt = false, laterGotIt = false;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        auto guard = co_await mutex.lock();
        cancelledGotIt = true;
      },
      asio::bind_cancellation_slot(cancel.slot(), [&](std::exception_ptr e) {
        cancelledError = e;
        cancelledDone = true;
      }));
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        auto guard = co_await mutex.lock();
        laterGotIt = true;
      },
      asio::detached);
  settle(io);
  cancel.emit(asio::cancellation_type::terminal);
  ASSERT_TRUE(test::runUntil(io, [&] { return cancelledDone; }));
  ASSERT_TRUE(cancelledError);
  try {
    std::rethrow_exception(cancelledError);
  } catch (const boost::system::system_error& e) {
    EXPECT_EQ(e.code(), asio::error::operation_aborted);
  }
  EXPECT_TRUE(mutex.isLocked());  // still the first holder's
  first.reset();
  ASSERT_TRUE(test::runUntil(io, [&] { return laterGotIt; }));
  EXPECT_FALSE(cancelledGotIt);
  EXPECT_FALSE(mutex.isLocked());
}

TEST(AsyncEvent, WaitersResumeOnlyOnceItIsSetAndLaterWaitsPass) {
  asio::io_context io;
  AsyncEvent event(io.get_executor());
  int woken = 0;
  for (int i = 0; i < 3; ++i) {
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
          co_await event.wait();
          ++woken;
        },
        asio::detached);
  }
  settle(io);
  EXPECT_EQ(woken, 0);
  EXPECT_FALSE(event.isSet());
  event.set();
  ASSERT_TRUE(test::runUntil(io, [&] { return woken == 3; }));
  test::run(io, event.wait());  // already set: passes at once
  event.reset();
  bool again = false;
  asio::co_spawn(io, flagAfter(event.wait(), again), asio::detached);
  settle(io);
  EXPECT_FALSE(again);
  asio::post(io, [&] { event.set(); });
  ASSERT_TRUE(test::runUntil(io, [&] { return again; }));
}

TEST(AsyncEvent, ACancelledWaitReturnsWithoutTheEventSet) {
  asio::io_context io;
  AsyncEvent event(io.get_executor());
  asio::cancellation_signal cancel;
  bool returned = false;
  asio::co_spawn(io, flagAfter(event.wait(), returned), asio::bind_cancellation_slot(cancel.slot(), asio::detached));
  settle(io);
  EXPECT_FALSE(returned);
  cancel.emit(asio::cancellation_type::terminal);
  ASSERT_TRUE(test::runUntil(io, [&] { return returned; }));
  EXPECT_FALSE(event.isSet());
}

TEST(WaitGroup, WaitReturnsAtOnceWhenNothingRuns) {
  asio::io_context io;
  WaitGroup group(io.get_executor());
  test::run(io, group.wait(), 1s);
  EXPECT_EQ(group.count(), 0u);
}

TEST(WaitGroup, WaitReturnsOnlyAfterEverySpawnedTaskFinished) {
  asio::io_context io;
  WaitGroup group(io.get_executor());
  AsyncEvent release(io.get_executor());
  int finished = 0;
  // Named: a coroutine lambda's captures live in the closure, which must
  // outlive the coroutines it starts.
  auto task = [&]() -> asio::awaitable<void> {
    co_await release.wait();
    ++finished;
  };
  for (int i = 0; i < 3; ++i) group.spawn(io.get_executor(), task());
  bool waited = false;
  asio::co_spawn(io, flagAfter(group.wait(), waited), asio::detached);
  settle(io);
  EXPECT_FALSE(waited);
  EXPECT_EQ(group.count(), 3u);
  release.set();
  ASSERT_TRUE(test::runUntil(io, [&] { return waited; }));
  EXPECT_EQ(finished, 3);
  EXPECT_EQ(group.count(), 0u);
}

TEST(WaitGroup, AddAndDoneCountTasksStartedElsewhere) {
  asio::io_context io;
  WaitGroup group(io.get_executor());
  group.add(2);
  bool waited = false;
  asio::co_spawn(io, flagAfter(group.wait(), waited), asio::detached);
  group.done();
  settle(io);
  EXPECT_FALSE(waited);
  group.done();
  ASSERT_TRUE(test::runUntil(io, [&] { return waited; }));
  group.done();  // one too many: ignored, not an underflow
  EXPECT_EQ(group.count(), 0u);
}

// A task that throws is a bug: it is counted done (waiters do not hang) and
// its exception surfaces from run() instead of vanishing.
TEST(WaitGroup, ATaskThatThrowsIsCountedDoneAndItsErrorSurfaces) {
  asio::io_context io;
  WaitGroup group(io.get_executor());
  group.spawn(io.get_executor(), []() -> asio::awaitable<void> {
    throw std::logic_error("broken invariant");
    co_return;
  }());
  EXPECT_THROW(io.run(), std::logic_error);
  EXPECT_EQ(group.count(), 0u);
}

TEST(WaitGroup, AHoldCountsItsScope) {
  asio::io_context io;
  WaitGroup group(io.get_executor());
  {
    WaitGroup::Hold hold(group);
    EXPECT_EQ(group.count(), 1u);
  }
  EXPECT_EQ(group.count(), 0u);
  test::run(io, group.wait(), 1s);
}

// A group inside an object that lives by shared_from_this: the owner given
// to spawn keeps the object (and its group) until the task is counted done.
TEST(WaitGroup, ASpawnsOwnerLivesUntilTheTaskIsCountedDone) {
  asio::io_context io;
  struct Owner {
    explicit Owner(const asio::any_io_executor& executor) : group(executor) {}
    WaitGroup group;
  };
  auto owner = std::make_shared<Owner>(io.get_executor());
  std::weak_ptr<Owner> watched = owner;
  AsyncEvent release(io.get_executor());
  // Named: the closure must outlive the coroutine it starts.
  auto task = [&release]() -> asio::awaitable<void> { co_await release.wait(); };
  owner->group.spawn(io.get_executor(), task(), owner);
  owner.reset();
  settle(io);
  ASSERT_FALSE(watched.expired());
  EXPECT_EQ(watched.lock()->group.count(), 1u);
  release.set();
  EXPECT_TRUE(test::runUntil(io, [&] { return watched.expired(); }));
}

TEST(TaskGroup, ASpawnsOwnerLivesUntilTheTaskEnds) {
  asio::io_context io;
  struct Owner {
    explicit Owner(const asio::any_io_executor& executor) : group(executor) {}
    TaskGroup group;
  };
  auto owner = std::make_shared<Owner>(io.get_executor());
  std::weak_ptr<Owner> watched = owner;
  Owner& self = *owner;
  // Named: the closure must outlive the coroutine it starts.
  auto loop = [&self]() -> asio::awaitable<void> {
    while (co_await self.group.sleep(1h)) {
    }
  };
  self.group.spawn(loop(), owner);
  owner.reset();
  settle(io);
  ASSERT_FALSE(watched.expired());
  self.group.cancel();
  EXPECT_TRUE(test::runUntil(
      io, [&] { return watched.expired(); }, 5s));
}

TEST(TaskGroup, CancelEndsEverySleepAtOnceAndJoinWaitsForTheTasksToEnd) {
  asio::io_context io;
  TaskGroup group(io.get_executor());
  int ended = 0;
  std::vector<bool> slept;
  // Named: the closure must outlive the coroutines it starts.
  auto loop = [&]() -> asio::awaitable<void> {
    while (co_await group.sleep(1h)) slept.push_back(true);
    ++ended;
  };
  group.spawn(loop());
  group.spawn(loop());
  bool joined = false;
  asio::co_spawn(io, flagAfter(group.join(), joined), asio::detached);
  settle(io);
  EXPECT_FALSE(joined);
  EXPECT_EQ(group.size(), 2u);
  group.cancel();
  // An hour-long sleep each: only the cancellation can end them in time.
  ASSERT_TRUE(test::runUntil(
      io, [&] { return joined; }, 5s));
  EXPECT_EQ(ended, 2);
  EXPECT_TRUE(slept.empty());
  EXPECT_EQ(group.size(), 0u);
}

TEST(TaskGroup, ASleepRunsItsCourseUntilCancelledAndNothingStartsAfterCancel) {
  asio::io_context io;
  TaskGroup group(io.get_executor());
  // Named: the closures must outlive the coroutines they start.
  std::optional<bool> first;
  auto sleepBriefly = [&]() -> asio::awaitable<void> { first = co_await group.sleep(5ms); };
  group.spawn(sleepBriefly());
  ASSERT_TRUE(test::runUntil(io, [&] { return first.has_value(); }));
  EXPECT_TRUE(*first);
  group.cancel();
  bool started = false;
  auto flagStart = [&]() -> asio::awaitable<void> {
    started = true;
    co_return;
  };
  group.spawn(flagStart());
  settle(io);
  EXPECT_FALSE(started);
  EXPECT_EQ(group.size(), 0u);
  std::optional<bool> late;
  auto sleepLong = [&]() -> asio::awaitable<void> { late = co_await group.sleep(1h); };
  test::run(io, sleepLong(), 5s);
  EXPECT_EQ(late, false);
}

}  // namespace
}  // namespace tinyfaas
