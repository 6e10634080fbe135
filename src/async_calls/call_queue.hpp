#pragma once
// The durable queue of asynchronous calls: every source of them (HTTP
// X-tinyFaaS-Async, CoAP No-Response, later MQTT QoS 1 messages) enqueues
// through enqueue(), which completes once the call is committed to disk; a
// dispatcher runs queued calls through the proxy, retries failures with
// exponential backoff, dead-letters what keeps failing, and logs each failed
// attempt to the function's log.
//
// Threads: the CallStore lives on a thread of its own (create() starts it,
// the destructor joins it), because every commit waits for an fsync; nothing
// else touches it, everyone else posts to it (util/run_on.hpp). The
// dispatcher, enqueue(), find() and the Drainable methods live on the
// data-plane executor; setPolicy(), drop(), list() and stats() may be awaited
// from any executor (the management API's). Log lines go to `logs` on
// `logExecutor`, the thread that owns the log store.

#include <cstddef>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

#include "async_calls/call_store.hpp"
#include "core/drainable.hpp"
#include "core/invoker.hpp"
#include "core/log_sink.hpp"
#include "util/async_sync.hpp"

namespace tinyfaas::async_calls {

struct QueueOptions {
  std::filesystem::path database;
  StoreLimits limits;
  // The retry policies of the functions stored at start (setPolicy() later).
  std::map<std::string, RetryPolicy, std::less<>> policies;
  // Calls running at once, and the bytes of their inputs together
  // (--async-max-calls, --async-body-bytes): due calls beyond them wait.
  std::size_t maxInFlight = 1024;
  std::size_t maxInFlightBytes = std::size_t{32} << 20;
};

class CallQueue final : public Drainable {
 public:
  // Opens the database (calls a crash left running are queued again).
  static SqlResult<std::unique_ptr<CallQueue>> create(boost::asio::any_io_executor dataPlane,
                                                      boost::asio::any_io_executor logExecutor, CallRunner& runner,
                                                      LogSink& logs, QueueOptions options);
  ~CallQueue() override;
  CallQueue(const CallQueue&) = delete;
  CallQueue& operator=(const CallQueue&) = delete;

  // Starts dispatching (before the data plane runs, or on it).
  void start();
  // Data plane. The caller has checked that the function exists.
  boost::asio::awaitable<DetachedCall> enqueue(Invocation invocation);
  // Data plane. A malformed id is unknown without a look at the database.
  boost::asio::awaitable<std::optional<AsyncCallRecord>> find(std::string id);
  // Data plane, at shutdown once stopAccepting() ran: returns when the
  // dispatcher and every call it started have ended.
  boost::asio::awaitable<void> join();

  // Any executor.
  boost::asio::awaitable<void> setPolicy(std::string function, RetryPolicy policy);
  boost::asio::awaitable<void> drop(std::string function);
  boost::asio::awaitable<SqlResult<std::vector<ListedCall>>> list(std::string function,
                                                                  std::optional<AsyncCallRecord::State> state,
                                                                  std::size_t limit);
  boost::asio::awaitable<StatsByFunction> stats();

  // Drainable, on the data plane: no new calls are accepted or started;
  // calls running go on (a failure from now on is not counted: it was
  // probably the shutdown's, and the call runs again after the restart).
  void stopAccepting() override;
  std::size_t callsInFlight() const override { return inFlight_; }
  void cutShort(std::string_view) override {}

 private:
  CallQueue(boost::asio::any_io_executor dataPlane, boost::asio::any_io_executor logExecutor, CallRunner& runner,
            LogSink& logs, QueueOptions options, std::unique_ptr<CallStore> store);
  boost::asio::any_io_executor storeExecutor() { return storeLoop_.get_executor(); }
  // Store thread, group commit: inserts and finished calls join the open
  // batch, or open one that a handler posted behind the work already
  // waiting commits. An insert's `done` is told once the call is on disk, or
  // at once why it was refused.
  using Stored = std::function<void(SqlResult<void>)>;
  SqlResult<void> joinBatch();
  void stage(const std::string& id, const Invocation& invocation, Stored done);
  // Store thread: commits the open batch and answers its inserts; every
  // other write calls it first.
  void commitStaged();
  // Store thread: claim() and, now and then, expire().
  SqlResult<Claimed> claimDue(std::size_t calls, std::size_t bytes, bool anySize);
  boost::asio::awaitable<void> dispatch();
  boost::asio::awaitable<void> run(StoredCall call);
  void report(const StoredCall& call, const CallResult& result, const Finished& finished);

  boost::asio::any_io_executor dataPlane_;
  boost::asio::any_io_executor logExecutor_;
  CallRunner& runner_;
  LogSink& logs_;
  QueueOptions options_;

  // Store thread.
  std::unique_ptr<CallStore> store_;
  Millis lastExpiry_ = 0;
  bool batchOpen_ = false;
  std::vector<Stored> staged_;  // inserts of the open batch, waiting for its commit

  // Data plane.
  AsyncEvent wake_;  // a call was queued or finished, or the queue stops
  TaskGroup tasks_;  // the dispatcher and the calls it runs
  std::size_t inFlight_ = 0;
  std::size_t bytesInFlight_ = 0;
  bool stopping_ = false;

  // Last: started once everything above exists, joined first.
  boost::asio::io_context storeLoop_{1};
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> storeWork_;
  std::thread storeThread_;
};

}  // namespace tinyfaas::async_calls
