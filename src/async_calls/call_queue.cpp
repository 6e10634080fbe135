#include "async_calls/call_queue.hpp"

#include <algorithm>
#include <chrono>

#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <spdlog/spdlog.h>

#include "async_calls/call_id.hpp"
#include "core/async.hpp"
#include "util/run_on.hpp"

namespace tinyfaas::async_calls {

namespace asio = boost::asio;
using namespace asio::experimental::awaitable_operators;
using State = AsyncCallRecord::State;

namespace {

// How often results past the retention are removed (a lookup never returns
// one anyway): half the retention, within these bounds.
std::chrono::milliseconds sweepInterval(std::chrono::milliseconds retention) {
  return std::clamp<std::chrono::milliseconds>(retention / 2, std::chrono::seconds(1), std::chrono::seconds(60));
}

Attempt attemptOf(const CallResult& result, bool stopping) {
  switch (result.status) {
    case CallStatus::ok: return Attempt::succeeded;
    // The platform refused the call before the function saw it (no instance
    // up yet after a restart, a full instance queue): not the function's fault.
    case CallStatus::notFound:
    case CallStatus::unavailable:
    case CallStatus::overloaded: return Attempt::interrupted;
    case CallStatus::functionError:
    case CallStatus::timeout:
    case CallStatus::payloadTooLarge: return stopping ? Attempt::interrupted : Attempt::failed;
  }
  return Attempt::failed;
}

// A function's error output as part of one log line.
std::string oneLine(std::string_view text) {
  std::string line(text.substr(0, 200));
  std::replace_if(
      line.begin(), line.end(), [](unsigned char c) { return c < 0x20 || c == 0x7f; }, ' ');
  return line;
}

}  // namespace

SqlResult<std::unique_ptr<CallQueue>> CallQueue::create(asio::any_io_executor dataPlane,
                                                        asio::any_io_executor logExecutor, CallRunner& runner,
                                                        LogSink& logs, QueueOptions options) {
  auto store = CallStore::open(options.database, options.limits);
  if (!store) return store.error();
  for (const auto& [function, policy] : options.policies) (*store)->setPolicy(function, policy);
  return std::unique_ptr<CallQueue>(
      new CallQueue(std::move(dataPlane), std::move(logExecutor), runner, logs, std::move(options), std::move(*store)));
}

CallQueue::CallQueue(asio::any_io_executor dataPlane, asio::any_io_executor logExecutor, CallRunner& runner,
                     LogSink& logs, QueueOptions options, std::unique_ptr<CallStore> store)
    : dataPlane_(dataPlane),
      logExecutor_(std::move(logExecutor)),
      runner_(runner),
      logs_(logs),
      options_(std::move(options)),
      store_(std::move(store)),
      wake_(dataPlane),
      tasks_(dataPlane),
      storeWork_(storeLoop_.get_executor()),
      storeThread_([this] { storeLoop_.run(); }) {}

CallQueue::~CallQueue() {
  // Whatever was posted to the store runs first: a finished call's result
  // is written before the thread ends.
  storeWork_.reset();
  storeThread_.join();
}

void CallQueue::start() { tasks_.spawn(dispatch()); }

void CallQueue::stopAccepting() {
  stopping_ = true;
  wake_.set();
}

asio::awaitable<void> CallQueue::join() { co_await tasks_.join(); }

asio::awaitable<DetachedCall> CallQueue::enqueue(Invocation invocation) {
  if (stopping_) co_return DetachedCall{CallStatus::unavailable, {}, "tinyFaaS is shutting down"};
  DetachedCall accepted{CallStatus::ok, newCallId(), {}};
  // Not runOn(): the answer comes at the batch's commit, after the insert.
  const auto home = co_await asio::this_coro::executor;
  AsyncEvent committed(home);
  SqlResult<void> stored;
  auto insert = [this, &accepted, &invocation, &stored, &committed, home] {
    stage(accepted.id, invocation, [&stored, &committed, home](SqlResult<void> result) {
      stored = std::move(result);
      asio::post(home, [&committed] { committed.set(); });
    });
  };
  asio::post(storeExecutor(), insert);
  co_await committed.wait();
  if (!stored) co_return DetachedCall{CallStatus::overloaded, {}, stored.error()};
  wake_.set();
  co_return accepted;
}

SqlResult<void> CallQueue::joinBatch() {
  if (batchOpen_) return {};
  if (auto begun = store_->beginBatch(); !begun) return begun;
  batchOpen_ = true;
  asio::post(storeExecutor(), [this] { commitStaged(); });
  return {};
}

void CallQueue::stage(const std::string& id, const Invocation& invocation, Stored done) {
  if (auto joined = joinBatch(); !joined) {
    done("cannot store the call: " + joined.error());
    return;
  }
  auto inserted = store_->insert(id, invocation, nowMillis());
  if (!inserted) {
    done(inserted.error());  // refused: nothing of it is in the batch
    // A failing disk can take the whole batch with it: its calls are lost
    // and must hear so now, before later inserts commit on their own.
    if (!store_->batchOpen()) commitStaged();
    return;
  }
  staged_.push_back(std::move(done));
}

void CallQueue::commitStaged() {
  if (!batchOpen_) return;
  batchOpen_ = false;
  const SqlResult<void> committed = store_->commitBatch();
  std::vector<Stored> waiting = std::move(staged_);
  staged_.clear();
  for (Stored& done : waiting) {
    if (committed) {
      done({});
    } else {
      done("cannot store the call: " + committed.error());
    }
  }
}

asio::awaitable<std::optional<AsyncCallRecord>> CallQueue::find(std::string id) {
  if (!isCallId(id)) co_return std::nullopt;
  auto lookup = [this, &id] { return store_->find(id, nowMillis()); };
  SqlResult<std::optional<AsyncCallRecord>> found = co_await runOn(storeExecutor(), lookup);
  if (!found) {
    spdlog::error("asynchronous calls: cannot read call {}: {}", id, found.error());
    co_return std::nullopt;
  }
  co_return std::move(*found);
}

asio::awaitable<void> CallQueue::setPolicy(std::string function, RetryPolicy policy) {
  auto set = [this, &function, policy] { store_->setPolicy(function, policy); };
  co_await runOn(storeExecutor(), set);
}

asio::awaitable<void> CallQueue::drop(std::string function) {
  auto erase = [this, &function] {
    commitStaged();
    return store_->drop(function);
  };
  SqlResult<std::size_t> dropped = co_await runOn(storeExecutor(), erase);
  if (!dropped) {
    spdlog::error("asynchronous calls: cannot drop the calls of {}: {}", function, dropped.error());
  } else if (*dropped > 0) {
    spdlog::info("asynchronous calls: dropped {} call(s) of {}", *dropped, function);
  }
}

asio::awaitable<SqlResult<std::vector<ListedCall>>> CallQueue::list(std::string function, std::optional<State> state,
                                                                    std::size_t limit) {
  auto read = [this, &function, state, limit] { return store_->list(function, state, limit, nowMillis()); };
  co_return co_await runOn(storeExecutor(), read);
}

asio::awaitable<StatsByFunction> CallQueue::stats() {
  auto read = [this] { return store_->stats(nowMillis()); };
  auto counted = co_await runOn(storeExecutor(), read);
  if (!counted) {
    spdlog::error("asynchronous calls: cannot count calls: {}", counted.error());
    co_return StatsByFunction{};
  }
  co_return std::move(*counted);
}

SqlResult<Claimed> CallQueue::claimDue(std::size_t calls, std::size_t bytes, bool anySize) {
  commitStaged();
  const Millis now = nowMillis();
  if (now - lastExpiry_ >= sweepInterval(options_.limits.retention).count()) {
    lastExpiry_ = now;
    if (auto expired = store_->expire(now); !expired) return expired.error();
  }
  return store_->claim(now, calls, bytes, anySize);
}

asio::awaitable<void> CallQueue::dispatch() {
  asio::steady_timer timer(dataPlane_);
  const std::chrono::milliseconds idle = sweepInterval(options_.limits.retention);
  while (!stopping_) {
    wake_.reset();
    std::chrono::milliseconds wait = idle;
    if (inFlight_ < options_.maxInFlight) {
      const std::size_t calls = options_.maxInFlight - inFlight_;
      const std::size_t bytes = options_.maxInFlightBytes - std::min(options_.maxInFlightBytes, bytesInFlight_);
      const bool anySize = inFlight_ == 0;
      auto claim = [this, calls, bytes, anySize] { return claimDue(calls, bytes, anySize); };
      SqlResult<Claimed> claimed = co_await runOn(storeExecutor(), claim);
      if (!claimed) {
        spdlog::error("asynchronous calls: cannot read the queue: {}", claimed.error());
        wait = std::chrono::seconds(1);
      } else {
        for (StoredCall& call : claimed->calls) {
          ++inFlight_;
          bytesInFlight_ += call.invocation.payload.size();
          tasks_.spawn(run(std::move(call)));
        }
        // A call already due waits for room (a finished call wakes us).
        if (claimed->nextDue && *claimed->nextDue > nowMillis())
          wait = std::min(wait, std::chrono::milliseconds(*claimed->nextDue - nowMillis()));
      }
    }
    if (stopping_) break;
    timer.expires_after(wait);
    co_await (wake_.wait() || timer.async_wait(useTuple));
  }
}

asio::awaitable<void> CallQueue::run(StoredCall call) {
  const std::size_t bytes = call.invocation.payload.size();
  // The invocation goes to the proxy; the call keeps what report() needs.
  Invocation invocation = call.invocation;
  CallResult result = co_await runner_.invoke(std::move(invocation));
  const Attempt attempt = attemptOf(result, stopping_);
  // In the batch, not awaited to the disk: a crash before the commit runs
  // the call again, which at least once allows.
  auto finish = [this, &call, attempt, &result]() -> SqlResult<std::optional<Finished>> {
    if (auto joined = joinBatch(); !joined) return joined.error();
    auto finished = store_->finish(call.id, attempt, result, nowMillis());
    if (!store_->batchOpen()) commitStaged();  // a failing disk took the batch
    return finished;
  };
  SqlResult<std::optional<Finished>> finished = co_await runOn(storeExecutor(), finish);
  --inFlight_;
  bytesInFlight_ -= bytes;
  wake_.set();
  if (!finished) {
    // Still marked running: queued again at the next start.
    spdlog::error("asynchronous calls: cannot record the end of call {} of {}: {}", call.id, call.invocation.function,
                  finished.error());
  } else if (*finished) {
    report(call, result, **finished);
  }
}

void CallQueue::report(const StoredCall& call, const CallResult& result, const Finished& finished) {
  if (finished.state == State::done) return;
  const bool counted = finished.failures > call.failures;
  if (!counted && finished.state == State::queued) return;  // not the function's doing; tried again soon
  std::string line = "asynchronous call " + call.id + ": attempt " + std::to_string(finished.failures) + " of " +
                     std::to_string(finished.attempts) + " failed (" + std::string(toString(result.status)) +
                     (result.code != 0 ? " " + std::to_string(result.code) : std::string()) +
                     "): " + oneLine(result.body);
  if (finished.state == State::queued) {
    line += "; retrying in " + std::to_string(finished.retryIn.count()) + " ms";
  } else {
    line += "; no retries left: dead-lettered (GET /calls?name=" + call.invocation.function + "&state=failed)";
    spdlog::warn("asynchronous call {} of {} failed for good after {} attempt(s)", call.id, call.invocation.function,
                 finished.failures);
  }
  asio::post(logExecutor_, [&logs = logs_, function = call.invocation.function, line = std::move(line)] {
    logs.append(function, "async", line);
  });
}

}  // namespace tinyfaas::async_calls
