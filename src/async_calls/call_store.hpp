#pragma once
// The durable table of asynchronous calls, in SQLite (WAL, synchronous=FULL:
// a call is on disk when insert() returns). Pure storage and bookkeeping,
// with the clock passed in: the queue (call_queue.hpp) gives it a thread of
// its own, since every commit waits for an fsync.
//
// A call is queued, running, done or failed. Its life: insert() (queued) ->
// claim() (running) -> finish(): done, failed for good (the dead letter), or
// queued again with a backoff. A crash leaves calls running: open() puts them
// back in the queue, so every accepted call runs at least once.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "async_calls/sqlite.hpp"
#include "core/invoker.hpp"
#include "core/retry_policy.hpp"

namespace tinyfaas::async_calls {

// Milliseconds since the Unix epoch: wall-clock times survive a restart.
using Millis = std::int64_t;
Millis nowMillis();

struct StoreLimits {
  std::size_t queuePerFunction = 1000;             // queued or running calls of one function
  std::size_t maxBytes = std::size_t{64} << 20;    // inputs, headers and results together
  std::size_t maxResults = 10000;                  // finished calls kept
  std::chrono::milliseconds retention{3'600'000};  // a finished call's result is kept this long
};

struct StoredCall {
  std::string id;
  Invocation invocation;
  int failures = 0;  // attempts that failed so far
  RetryPolicy policy;
};

struct Claimed {
  std::vector<StoredCall> calls;
  std::optional<Millis> nextDue;  // the earliest call still queued, if any
};

// How an attempt ended, as finish() counts it.
enum class Attempt {
  succeeded,
  failed,       // it reached the function and failed: counts against the retries
  interrupted,  // it never reached the function (no instance up), or a shutdown cut it: tried again, not counted
};

struct Finished {
  AsyncCallRecord::State state = AsyncCallRecord::State::done;  // queued: to be tried again
  int failures = 0;                                             // counted failures so far
  int attempts = 0;                                             // the most the call gets
  std::chrono::milliseconds retryIn{0};                         // queued: when it is due again
};

struct ListedCall {
  std::string id;
  std::string function;
  AsyncCallRecord::State state = AsyncCallRecord::State::queued;
  int failures = 0;
  Millis accepted = 0;
  std::optional<Millis> finished;
  unsigned code = 0;   // the function's status code, if it answered one
  std::string reason;  // failed: the last attempt's reason (shortened)
};

struct FunctionCallStats {
  std::uint64_t queued = 0;        // queued or running
  std::uint64_t deadLetters = 0;   // failed for good, kept within the retention
  std::uint64_t deadLettered = 0;  // failed for good since the daemon started
};
using StatsByFunction = std::map<std::string, FunctionCallStats, std::less<>>;

// One thread at a time (the queue's store thread).
class CallStore {
 public:
  // Opens (creating) the database and puts calls left running by a crash
  // back in the queue.
  static SqlResult<std::unique_ptr<CallStore>> open(const std::filesystem::path& file, StoreLimits limits);

  // The retry policy of calls accepted from now on for `function`.
  void setPolicy(const std::string& function, RetryPolicy policy) { policies_[function] = policy; }
  // Forgets the function's policy and every call of it, whatever its state.
  SqlResult<std::size_t> drop(const std::string& function);

  // Stores a queued call, due at once; the error says why it was refused
  // (the function's queue or the store is full, or the disk failed).
  SqlResult<void> insert(const std::string& id, const Invocation& invocation, Millis now);
  // Group commit: the inserts between beginBatch() and commitBatch() reach
  // the disk together, with one fsync. No other write may run meanwhile.
  // A failed commit rolls the batch back.
  SqlResult<void> beginBatch();
  SqlResult<void> commitBatch();
  // False once an error rolled the open batch back.
  bool batchOpen() const { return db_.inTransaction(); }
  // Marks up to `maxCalls` due calls running, oldest due first, whose inputs
  // fit `maxBytes` together (one call always fits when `anySize`).
  SqlResult<Claimed> claim(Millis now, std::size_t maxCalls, std::size_t maxBytes, bool anySize);
  // Records how a running call's attempt ended; nullopt when the call is no
  // longer there (its function was deleted meanwhile).
  SqlResult<std::optional<Finished>> finish(const std::string& id, Attempt attempt, const CallResult& result,
                                            Millis now);
  // nullopt: no such call, or its result expired.
  SqlResult<std::optional<AsyncCallRecord>> find(const std::string& id, Millis now);
  // The function's calls (in `state` only, if given), oldest first, at most `limit`.
  SqlResult<std::vector<ListedCall>> list(const std::string& function, std::optional<AsyncCallRecord::State> state,
                                          std::size_t limit, Millis now);
  // Removes results past the retention.
  SqlResult<std::size_t> expire(Millis now);
  SqlResult<StatsByFunction> stats(Millis now);

  std::size_t bytes() const { return bytes_; }
  std::size_t results() const { return results_; }

 private:
  CallStore(Database db, StoreLimits limits) : db_(std::move(db)), limits_(limits) {}
  SqlResult<void> recount();
  // Drops the oldest results until `needed` more bytes fit and the result
  // count is within its bound.
  SqlResult<void> makeRoom(std::size_t needed);

  Database db_;
  StoreLimits limits_;
  std::map<std::string, RetryPolicy, std::less<>> policies_;
  std::map<std::string, std::uint64_t, std::less<>> deadLettered_;
  std::size_t bytes_ = 0;    // the `bytes` column summed
  std::size_t results_ = 0;  // done or failed rows
};

}  // namespace tinyfaas::async_calls
