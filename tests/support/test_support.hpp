#pragma once
// Shared by the unit tests: a temporary directory per test, ways to drive an
// io_context from the test thread with a deadline, and eventually() to wait
// for a loop that runs on another thread, so that a hang fails a test
// instead of hanging ctest.

#include <chrono>
#include <exception>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/system/result.hpp>

namespace tinyfaas::test {

using namespace std::chrono_literals;

// Long enough for a loaded two-core machine, short enough that a hang fails.
inline constexpr std::chrono::milliseconds kDeadline = 20s;

// The value, or a thrown error that fails the test with the reason.
template <class T>
T must(boost::system::result<T, std::string> r) {
  if (!r) throw std::runtime_error(r.error());
  return std::move(*r);
}

// A fresh directory under $TMPDIR, removed with everything in it. Its path is
// short: Unix socket paths below it must fit in sockaddr_un's 108 bytes.
class TempDir {
 public:
  TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir();

  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(const std::filesystem::path& relative) const { return path_ / relative; }

  // Creates `relative` (and its parents) holding `content`; returns its path.
  std::filesystem::path writeFile(const std::filesystem::path& relative, const std::string& content,
                                  std::filesystem::perms mode = std::filesystem::perms(0644)) const;

 private:
  std::filesystem::path path_;
};

std::string readFile(const std::filesystem::path& file);

// Runs `io` on this thread until `done()` holds; false when the deadline
// passed first. Every wait in the tests goes through here or run().
bool runUntil(boost::asio::io_context& io, const std::function<bool()>& done,
              std::chrono::milliseconds deadline = kDeadline);

// Polls `predicate` from this thread until it holds, for state that another
// thread (a frontend's loop) changes; false when the deadline passed first.
// The predicate must read that state safely (a mutex, or by posting).
bool eventually(const std::function<bool()>& predicate, std::chrono::milliseconds deadline = kDeadline);

// Runs `io` for a while whatever happens (to observe that something does
// NOT happen within a short window).
void runFor(boost::asio::io_context& io, std::chrono::milliseconds duration);

// Runs `task` to completion on `io` from this thread and returns its value;
// throws (failing the test) when it does not finish before the deadline.
template <class T>
T run(boost::asio::io_context& io, boost::asio::awaitable<T> task, std::chrono::milliseconds deadline = kDeadline) {
  // Shared, not on this stack: a task that misses the deadline may still
  // complete later, while the fixture tears down.
  struct State {
    std::optional<T> value;
    std::exception_ptr error;
    bool finished = false;
  };
  auto state = std::make_shared<State>();
  boost::asio::co_spawn(io, std::move(task), [state](std::exception_ptr e, T v) {
    if (e)
      state->error = e;
    else
      state->value.emplace(std::move(v));
    state->finished = true;
  });
  if (!runUntil(
          io, [&] { return state->finished; }, deadline))
    throw std::runtime_error("coroutine did not finish within " + std::to_string(deadline.count()) + " ms");
  if (state->error) std::rethrow_exception(state->error);
  return std::move(*state->value);
}

inline void run(boost::asio::io_context& io, boost::asio::awaitable<void> task,
                std::chrono::milliseconds deadline = kDeadline) {
  struct State {
    std::exception_ptr error;
    bool finished = false;
  };
  auto state = std::make_shared<State>();
  boost::asio::co_spawn(io, std::move(task), [state](std::exception_ptr e) {
    state->error = e;
    state->finished = true;
  });
  if (!runUntil(
          io, [&] { return state->finished; }, deadline))
    throw std::runtime_error("coroutine did not finish within " + std::to_string(deadline.count()) + " ms");
  if (state->error) std::rethrow_exception(state->error);
}

// The repository root (for runtimes/ and functions/).
std::filesystem::path repoDir();

// Known-bug tests are skipped so the suite stays green; this environment
// variable runs them anyway, to watch them fail until the bug is fixed.
bool runKnownBugs();

}  // namespace tinyfaas::test
