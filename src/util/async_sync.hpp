#pragma once
// Synchronisation between coroutines that run on ONE executor (a loop thread
// or a strand): an async mutex, an event, a wait group and a task group. None of them is
// thread-safe; they replace the idioms that stood in for them (a channel of
// capacity 1 used as a mutex, a steady_timer set to expire never and
// cancelled as a signal).
//
// Waits follow Asio's cancellation rules: a wait whose coroutine is cancelled
// (a cancellation slot, e.g. from a parallel group or a task group) ends at
// once. AsyncEvent::wait and WaitGroup::wait then return without the event
// being set (check isSet() / count() if it matters); AsyncMutex::lock throws
// operation_aborted, as a cancelled use_awaitable operation does.

#include <cstddef>
#include <exception>
#include <list>
#include <memory>
#include <utility>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/system/system_error.hpp>

namespace tinyfaas {

// A flag coroutines can wait for. set() wakes every waiter and lets later
// waits pass at once, until reset().
class AsyncEvent {
 public:
  explicit AsyncEvent(boost::asio::any_io_executor executor)
      : wake_(std::move(executor), boost::asio::steady_timer::time_point::max()) {}
  AsyncEvent(const AsyncEvent&) = delete;
  AsyncEvent& operator=(const AsyncEvent&) = delete;

  void set() {
    set_ = true;
    wake_.cancel();  // the timer never expires: cancelling it is the wake-up
  }
  void reset() { set_ = false; }
  bool isSet() const { return set_; }

  boost::asio::awaitable<void> wait() {
    if (set_) co_return;
    co_await wake_.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
  }

 private:
  boost::asio::steady_timer wake_;
  bool set_ = false;
};

// Counts running tasks; wait() returns once the count is back to zero
// (at once when nothing was added).
class WaitGroup {
 public:
  explicit WaitGroup(boost::asio::any_io_executor executor) : idle_(std::move(executor)) { idle_.set(); }
  WaitGroup(const WaitGroup&) = delete;
  WaitGroup& operator=(const WaitGroup&) = delete;

  void add(std::size_t n = 1) {
    if (n == 0) return;
    count_ += n;
    idle_.reset();
  }
  void done() {
    if (count_ > 0 && --count_ == 0) idle_.set();
  }
  std::size_t count() const { return count_; }

  // Counts the holder's scope as one task: add() now, done() when it goes.
  class [[nodiscard]] Hold {
   public:
    explicit Hold(WaitGroup& group) : group_(group) { group_.add(); }
    Hold(const Hold&) = delete;
    Hold& operator=(const Hold&) = delete;
    ~Hold() { group_.done(); }

   private:
    WaitGroup& group_;
  };

  boost::asio::awaitable<void> wait() { return idle_.wait(); }

  // Starts `task` on `executor` counted in this group. An exception it
  // throws still counts it done, then propagates out of the executor's run()
  // (a bug, not an error a peer can cause: asio::detached would hide it).
  // `owner`, if any, is held until the count is done: a group inside an
  // object that lives by shared_from_this is kept alive there, because the
  // task's frame (and a shared_ptr in it) ends before its count does.
  void spawn(const boost::asio::any_io_executor& executor, boost::asio::awaitable<void> task,
             std::shared_ptr<const void> owner = {}) {
    add();
    boost::asio::co_spawn(executor, std::move(task), [this, owner = std::move(owner)](std::exception_ptr error) {
      done();
      if (error) std::rethrow_exception(error);
    });
  }

 private:
  AsyncEvent idle_;
  std::size_t count_ = 0;
};

// An owner's background coroutines, stopped and awaited together instead of
// spawned with asio::detached. cancel() ends every sleep() at once and keeps
// later spawns from starting; join() returns once the last task ended.
// Cancellation is cooperative: a task ends where it sleeps or checks
// cancelled(), never in the middle of work that must finish (an instance
// half started would outlive its daemon), which Asio's per-operation
// cancellation could not promise for every operation a task awaits.
class TaskGroup {
 public:
  explicit TaskGroup(boost::asio::any_io_executor executor) : executor_(executor), running_(std::move(executor)) {}
  TaskGroup(const TaskGroup&) = delete;
  TaskGroup& operator=(const TaskGroup&) = delete;

  // `owner` as for WaitGroup::spawn.
  void spawn(boost::asio::awaitable<void> task, std::shared_ptr<const void> owner = {}) {
    if (!cancelled_) running_.spawn(executor_, std::move(task), std::move(owner));
  }
  void cancel() {
    cancelled_ = true;
    for (boost::asio::steady_timer* timer : sleepers_) timer->cancel();
  }
  bool cancelled() const { return cancelled_; }
  std::size_t size() const { return running_.count(); }
  boost::asio::awaitable<void> join() { return running_.wait(); }

  // Waits `duration`, or less when the group is cancelled meanwhile; false
  // when it was. Any coroutine on the group's executor may use it.
  boost::asio::awaitable<bool> sleep(boost::asio::steady_timer::duration duration) {
    if (cancelled_) co_return false;
    Sleeper self(*this, duration);
    co_await self.timer.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
    co_return !cancelled_;
  }

 private:
  // Listed while it waits, however its wait ends (even with its frame destroyed).
  struct Sleeper {
    Sleeper(TaskGroup& owner, boost::asio::steady_timer::duration duration)
        : group(owner),
          timer(owner.executor_, duration),
          place(owner.sleepers_.insert(owner.sleepers_.end(), &timer)) {}
    Sleeper(const Sleeper&) = delete;
    Sleeper& operator=(const Sleeper&) = delete;
    ~Sleeper() { group.sleepers_.erase(place); }
    TaskGroup& group;
    boost::asio::steady_timer timer;
    std::list<boost::asio::steady_timer*>::iterator place;
  };

  boost::asio::any_io_executor executor_;
  WaitGroup running_;
  std::list<boost::asio::steady_timer*> sleepers_;
  bool cancelled_ = false;
};

// A mutex for coroutines: `auto guard = co_await mutex.lock();` holds it
// until the guard goes. Waiters get it in the order they asked. It is not
// recursive: a holder that locks again waits forever.
class AsyncMutex {
 public:
  class [[nodiscard]] Guard {
   public:
    Guard(Guard&& other) noexcept : mutex_(std::exchange(other.mutex_, nullptr)) {}
    Guard& operator=(Guard&&) = delete;
    ~Guard() {
      if (mutex_) mutex_->unlock();
    }

   private:
    friend class AsyncMutex;
    explicit Guard(AsyncMutex* mutex) : mutex_(mutex) {}
    AsyncMutex* mutex_;
  };

  AsyncMutex() = default;
  AsyncMutex(const AsyncMutex&) = delete;
  AsyncMutex& operator=(const AsyncMutex&) = delete;

  bool isLocked() const { return locked_; }

  boost::asio::awaitable<Guard> lock() {
    if (!locked_) {
      locked_ = true;
      co_return Guard(this);
    }
    Waiter self(*this, co_await boost::asio::this_coro::executor);
    co_await self.turn.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
    // unlock() hands the mutex over (locked_ stays true) and unlists us;
    // anything else that ended the wait was a cancellation.
    if (!self.granted) throw boost::system::system_error(boost::asio::error::operation_aborted);
    co_return Guard(this);
  }

 private:
  // Lives in the waiting coroutine's frame, listed until unlock() takes it;
  // a wait that ends otherwise (cancelled, or its frame destroyed) unlists it.
  struct Waiter {
    Waiter(AsyncMutex& owner, boost::asio::any_io_executor executor)
        : mutex(owner),
          turn(std::move(executor), boost::asio::steady_timer::time_point::max()),
          place(owner.waiters_.insert(owner.waiters_.end(), this)) {}
    Waiter(const Waiter&) = delete;
    Waiter& operator=(const Waiter&) = delete;
    ~Waiter() {
      if (!granted) mutex.waiters_.erase(place);
    }
    AsyncMutex& mutex;
    boost::asio::steady_timer turn;
    std::list<Waiter*>::iterator place;
    bool granted = false;
  };

  void unlock() {
    if (waiters_.empty()) {
      locked_ = false;
      return;
    }
    Waiter* next = waiters_.front();
    waiters_.pop_front();
    next->granted = true;
    next->turn.cancel();
  }

  std::list<Waiter*> waiters_;
  bool locked_ = false;
};

}  // namespace tinyfaas
