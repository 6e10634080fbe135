#include "async_calls/call_store.hpp"

#include <fcntl.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <nlohmann/json.hpp>

#include "util/unique_fd.hpp"

namespace tinyfaas::async_calls {

namespace {

using State = AsyncCallRecord::State;

// A call that never reached its function (no instance up yet, e.g. while the
// daemon restores its functions) is tried again after this, without limit.
constexpr Millis kInterruptedRetryMs = 1000;
// Backoffs double up to this.
constexpr Millis kMaxRetryDelayMs = 3'600'000;
// The reason a failed call lists with, at most.
constexpr std::size_t kListedReasonBytes = 200;

constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS calls (
  id TEXT PRIMARY KEY,
  function TEXT NOT NULL,
  state INTEGER NOT NULL,          -- AsyncCallRecord::State
  payload BLOB NOT NULL,           -- emptied once finished
  headers TEXT NOT NULL,           -- JSON [[name, value], ...]
  failures INTEGER NOT NULL DEFAULT 0,
  retries INTEGER NOT NULL,
  backoff_ms INTEGER NOT NULL,
  accepted_at INTEGER NOT NULL,
  next_at INTEGER NOT NULL,        -- queued: due from then
  finished_at INTEGER,
  status INTEGER,                  -- CallStatus of the last attempt
  code INTEGER,
  result_headers TEXT,
  result BLOB,
  bytes INTEGER NOT NULL           -- payload, headers and result: what counts against the cap
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS calls_due ON calls (state, next_at);
CREATE INDEX IF NOT EXISTS calls_finished ON calls (state, finished_at);
CREATE INDEX IF NOT EXISTS calls_function ON calls (function, state);
)sql";

std::string encodeHeaders(const HeaderList& headers) {
  nlohmann::json list = nlohmann::json::array();
  for (const auto& header : headers) list.push_back({header.first, header.second});
  // Header values are bytes; replace what is not UTF-8 rather than throw.
  return list.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

HeaderList decodeHeaders(const std::string& text) {
  HeaderList headers;
  const auto list = nlohmann::json::parse(text, nullptr, false);
  if (!list.is_array()) return headers;
  for (const auto& pair : list) {
    if (pair.is_array() && pair.size() == 2 && pair[0].is_string() && pair[1].is_string())
      headers.emplace_back(pair[0].get<std::string>(), pair[1].get<std::string>());
  }
  return headers;
}

bool isFinished(State state) { return state == State::done || state == State::failed; }

State stateOf(std::int64_t value) { return value >= 0 && value <= 3 ? static_cast<State>(value) : State::failed; }

std::int64_t column(State state) { return static_cast<std::int64_t>(state); }

std::size_t size(std::int64_t bytes) { return bytes > 0 ? static_cast<std::size_t>(bytes) : 0; }

}  // namespace

Millis nowMillis() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

SqlResult<std::unique_ptr<CallStore>> CallStore::open(const std::filesystem::path& file, StoreLimits limits) {
  // Calls' inputs are the clients' data: 0600 whatever the umask (or an
  // earlier mode), and SQLite gives its -wal and -shm files the database
  // file's mode.
  {
    UniqueFd fd(::open(file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600));
    if (!fd || ::fchmod(fd.get(), 0600) != 0) return file.string() + ": " + std::strerror(errno);
  }
  auto db = Database::open(file);
  if (!db) return db.error();
  // WAL with synchronous=FULL: a commit returns once its WAL frames are
  // fsynced, so an accepted call survives a power cut.
  for (const char* pragma : {"PRAGMA journal_mode=WAL", "PRAGMA synchronous=FULL"}) {
    if (auto set = db->exec(pragma); !set) return file.string() + ": " + set.error();
  }
  // The file's own bound, beyond the byte count kept below: rows, indexes
  // and free pages take more than their payloads. Past it inserts fail
  // with SQLITE_FULL, which refuses the call.
  auto pageSize = db->prepare("PRAGMA page_size");
  if (!pageSize) return pageSize.error();
  if (auto row = pageSize->step(); !row || !*row) return file.string() + ": cannot read the page size";
  const std::size_t pages = (2 * limits.maxBytes + (std::size_t{8} << 20)) / size(pageSize->integer(0));
  auto maxPages = db->prepare("PRAGMA max_page_count=" + std::to_string(pages));
  if (!maxPages) return maxPages.error();
  if (auto set = maxPages->run(); !set) return set.error();
  if (auto schema = db->exec(kSchema); !schema) return file.string() + ": " + schema.error();

  std::unique_ptr<CallStore> store(new CallStore(std::move(*db), limits));
  auto recover = store->db_.prepare("UPDATE calls SET state = ?1 WHERE state = ?2");
  if (!recover) return recover.error();
  if (auto done = recover->bind(1, column(State::queued)).bind(2, column(State::running)).run(); !done)
    return done.error();
  if (auto counted = store->recount(); !counted) return counted.error();
  return store;
}

SqlResult<void> CallStore::recount() {
  auto sums = db_.prepare("SELECT COALESCE(SUM(bytes), 0), COALESCE(SUM(state >= ?1), 0) FROM calls");
  if (!sums) return sums.error();
  sums->bind(1, column(State::done));
  auto row = sums->step();
  if (!row) return row.error();
  bytes_ = size(sums->integer(0));
  results_ = size(sums->integer(1));
  return {};
}

SqlResult<void> CallStore::makeRoom(std::size_t needed) {
  while (results_ > 0 && (results_ > limits_.maxResults || bytes_ + needed > limits_.maxBytes)) {
    auto oldest = db_.prepare("SELECT id FROM calls WHERE state >= ?1 ORDER BY finished_at LIMIT 1");
    if (!oldest) return oldest.error();
    oldest->bind(1, column(State::done));
    auto row = oldest->step();
    if (!row) return row.error();
    if (!*row) break;
    auto erase = db_.prepare("DELETE FROM calls WHERE id = ?1 RETURNING bytes");
    if (!erase) return erase.error();
    erase->bindText(1, oldest->text(0));
    auto erased = erase->step();
    if (!erased) return erased.error();
    if (*erased) bytes_ -= std::min(bytes_, size(erase->integer(0)));
    if (auto rest = erase->run(); !rest) return rest.error();
    --results_;
  }
  return {};
}

SqlResult<std::size_t> CallStore::drop(const std::string& function) {
  policies_.erase(function);
  deadLettered_.erase(function);
  auto erase = db_.prepare("DELETE FROM calls WHERE function = ?1");
  if (!erase) return erase.error();
  if (auto done = erase->bindText(1, function).run(); !done) return done.error();
  const auto dropped = size(db_.changes());
  if (auto counted = recount(); !counted) return counted.error();
  return dropped;
}

SqlResult<void> CallStore::insert(const std::string& id, const Invocation& invocation, Millis now) {
  auto waiting = db_.prepare("SELECT COUNT(*) FROM calls WHERE function = ?1 AND state <= ?2");
  if (!waiting) return waiting.error();
  waiting->bindText(1, invocation.function).bind(2, column(State::running));
  if (auto row = waiting->step(); !row) return row.error();
  if (size(waiting->integer(0)) >= limits_.queuePerFunction)
    return "the asynchronous queue of " + invocation.function + " is full (" +
           std::to_string(limits_.queuePerFunction) + " calls waiting); try again later";

  std::string headers = encodeHeaders(invocation.headers);
  const std::size_t bytes = invocation.payload.size() + headers.size();
  // Old results give way to new calls.
  if (auto room = makeRoom(bytes); !room) return room.error();
  if (bytes_ + bytes > limits_.maxBytes)
    return "the asynchronous call store is full (" + std::to_string(limits_.maxBytes) + " bytes); try again later";

  const auto policy = policies_.find(invocation.function);
  const RetryPolicy retry = policy == policies_.end() ? RetryPolicy{} : policy->second;
  auto add = db_.prepare(
      "INSERT INTO calls (id, function, state, payload, headers, retries, backoff_ms, accepted_at, next_at, bytes) "
      "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8, ?9)");
  if (!add) return add.error();
  add->bindText(1, id)
      .bindText(2, invocation.function)
      .bind(3, column(State::queued))
      .bindBlob(4, invocation.payload)
      .bindText(5, headers)
      .bind(6, retry.retries)
      .bind(7, retry.backoff.count())
      .bind(8, now)
      .bind(9, static_cast<std::int64_t>(bytes));
  if (auto done = add->run(); !done) {
    // SQLITE_FULL: "database or disk is full"
    if (done.error().find("is full") != std::string::npos)
      return "the asynchronous call store is full (its file reached its size cap); try again later";
    return "cannot store the call: " + done.error();
  }
  bytes_ += bytes;
  return {};
}

SqlResult<void> CallStore::beginBatch() { return db_.exec("BEGIN IMMEDIATE"); }

SqlResult<void> CallStore::commitBatch() {
  auto committed = db_.exec("COMMIT");
  if (committed) return committed;
  (void)db_.exec("ROLLBACK");
  // The byte count had the rolled-back calls in it.
  if (auto counted = recount(); !counted) return counted.error();
  return committed;
}

SqlResult<Claimed> CallStore::claim(Millis now, std::size_t maxCalls, std::size_t maxBytes, bool anySize) {
  Claimed claimed;
  auto transaction = Transaction::begin(db_);
  if (!transaction) return transaction.error();
  auto due = db_.prepare(
      "SELECT id, function, payload, headers, failures, retries, backoff_ms FROM calls "
      "WHERE state = ?1 AND next_at <= ?2 ORDER BY next_at LIMIT ?3");
  if (!due) return due.error();
  due->bind(1, column(State::queued)).bind(2, now).bind(3, static_cast<std::int64_t>(maxCalls));
  std::size_t bytes = 0;
  for (;;) {
    auto row = due->step();
    if (!row) return row.error();
    if (!*row) break;
    StoredCall call;
    call.id = due->text(0);
    call.invocation.function = due->text(1);
    call.invocation.payload = due->text(2);
    const bool fits = bytes + call.invocation.payload.size() <= maxBytes || (anySize && claimed.calls.empty());
    if (!fits) break;  // in due order: a later call does not overtake it
    bytes += call.invocation.payload.size();
    call.invocation.headers = decodeHeaders(due->text(3));
    call.failures = static_cast<int>(due->integer(4));
    call.policy.retries = static_cast<int>(due->integer(5));
    call.policy.backoff = std::chrono::milliseconds(due->integer(6));
    claimed.calls.push_back(std::move(call));
  }
  for (const auto& call : claimed.calls) {
    auto mark = db_.prepare("UPDATE calls SET state = ?1 WHERE id = ?2");
    if (!mark) return mark.error();
    if (auto done = mark->bind(1, column(State::running)).bindText(2, call.id).run(); !done) return done.error();
  }
  if (!claimed.calls.empty()) {
    if (auto committed = transaction->commit(); !committed) return committed.error();
  }
  auto next = db_.prepare("SELECT MIN(next_at) FROM calls WHERE state = ?1");
  if (!next) return next.error();
  next->bind(1, column(State::queued));
  if (auto row = next->step(); !row) return row.error();
  if (!next->isNull(0)) claimed.nextDue = next->integer(0);
  return claimed;
}

SqlResult<std::optional<Finished>> CallStore::finish(const std::string& id, Attempt attempt, const CallResult& result,
                                                     Millis now) {
  auto running = db_.prepare(
      "SELECT function, failures, retries, backoff_ms, bytes, length(payload) + length(headers) FROM calls "
      "WHERE id = ?1 AND state = ?2");
  if (!running) return running.error();
  running->bindText(1, id).bind(2, column(State::running));
  auto row = running->step();
  if (!row) return row.error();
  if (!*row) return std::optional<Finished>();
  const std::string function = running->text(0);
  Finished finished;
  finished.failures = static_cast<int>(running->integer(1));
  const int retries = static_cast<int>(running->integer(2));
  const Millis backoff = running->integer(3);
  const std::size_t before = size(running->integer(4));
  const std::size_t inputBytes = size(running->integer(5));
  finished.attempts = retries + 1;

  if (attempt == Attempt::interrupted) {
    finished.state = State::queued;
    finished.retryIn = std::chrono::milliseconds(kInterruptedRetryMs);
  } else if (attempt == Attempt::failed && ++finished.failures <= retries) {
    finished.state = State::queued;
    // backoff, 2 x backoff, 4 x backoff, ... (shifts bounded: no overflow)
    const Millis delay = std::min(kMaxRetryDelayMs, backoff << std::min(finished.failures - 1, 30));
    finished.retryIn = std::chrono::milliseconds(delay);
  } else {
    finished.state = attempt == Attempt::succeeded ? State::done : State::failed;
  }

  const std::string headers = encodeHeaders(result.headers);
  std::size_t after = before;
  SqlResult<Statement> update = [&]() -> SqlResult<Statement> {
    if (finished.state == State::queued) {
      // The last failure stays with the call, for the listing.
      auto queued = db_.prepare(
          "UPDATE calls SET state = ?2, failures = ?3, next_at = ?4, status = ?5, code = ?6, result = ?7, "
          "bytes = ?8 WHERE id = ?1");
      if (!queued) return queued;
      const std::string reason = result.body.substr(0, kListedReasonBytes);
      after = inputBytes + reason.size();
      queued->bindText(1, id)
          .bind(2, column(State::queued))
          .bind(3, finished.failures)
          .bind(4, now + finished.retryIn.count())
          .bind(5, static_cast<std::int64_t>(result.status))
          .bind(6, result.code)
          .bindBlob(7, reason)
          .bind(8, static_cast<std::int64_t>(after));
      return queued;
    }
    auto done = db_.prepare(
        "UPDATE calls SET state = ?2, failures = ?3, finished_at = ?4, status = ?5, code = ?6, result_headers = ?7, "
        "result = ?8, payload = x'', headers = '[]', bytes = ?9 WHERE id = ?1");
    if (!done) return done;
    after = result.body.size() + headers.size();
    done->bindText(1, id)
        .bind(2, column(finished.state))
        .bind(3, finished.failures)
        .bind(4, now)
        .bind(5, static_cast<std::int64_t>(result.status))
        .bind(6, result.code)
        .bindText(7, headers)
        .bindBlob(8, result.body)
        .bind(9, static_cast<std::int64_t>(after));
    return done;
  }();
  if (!update) return update.error();
  if (auto done = update->run(); !done) return done.error();
  bytes_ = bytes_ - std::min(bytes_, before) + after;
  if (isFinished(finished.state)) {
    ++results_;
    if (finished.state == State::failed) ++deadLettered_[function];
    if (auto room = makeRoom(0); !room) return room.error();
  }
  return std::optional<Finished>(finished);
}

SqlResult<std::optional<AsyncCallRecord>> CallStore::find(const std::string& id, Millis now) {
  auto call = db_.prepare("SELECT state, finished_at, status, code, result_headers, result FROM calls WHERE id = ?1");
  if (!call) return call.error();
  call->bindText(1, id);
  auto row = call->step();
  if (!row) return row.error();
  if (!*row) return std::optional<AsyncCallRecord>();
  AsyncCallRecord record;
  record.state = stateOf(call->integer(0));
  if (!isFinished(record.state)) return std::optional<AsyncCallRecord>(record);
  if (call->integer(1) + limits_.retention.count() <= now) return std::optional<AsyncCallRecord>();
  const auto status = call->integer(2);
  record.result.status = status >= 0 && status <= static_cast<std::int64_t>(CallStatus::payloadTooLarge)
                             ? static_cast<CallStatus>(status)
                             : CallStatus::functionError;
  record.result.code = static_cast<unsigned>(call->integer(3));
  record.result.headers = decodeHeaders(call->text(4));
  record.result.body = call->text(5);
  return std::optional<AsyncCallRecord>(std::move(record));
}

SqlResult<std::vector<ListedCall>> CallStore::list(const std::string& function, std::optional<State> state,
                                                   std::size_t limit, Millis now) {
  auto calls = db_.prepare(
      "SELECT id, state, failures, accepted_at, finished_at, code, substr(result, 1, ?4) FROM calls "
      "WHERE function = ?1 AND (?2 < 0 OR state = ?2) AND (finished_at IS NULL OR finished_at > ?5) "
      "ORDER BY accepted_at LIMIT ?3");
  if (!calls) return calls.error();
  calls->bindText(1, function)
      .bind(2, state ? column(*state) : -1)
      .bind(3, static_cast<std::int64_t>(limit))
      .bind(4, static_cast<std::int64_t>(kListedReasonBytes))
      .bind(5, now - limits_.retention.count());
  std::vector<ListedCall> out;
  for (;;) {
    auto row = calls->step();
    if (!row) return row.error();
    if (!*row) break;
    ListedCall call;
    call.id = calls->text(0);
    call.function = function;
    call.state = stateOf(calls->integer(1));
    call.failures = static_cast<int>(calls->integer(2));
    call.accepted = calls->integer(3);
    if (!calls->isNull(4)) call.finished = calls->integer(4);
    call.code = static_cast<unsigned>(calls->integer(5));
    if (call.state != State::done) call.reason = calls->text(6);
    out.push_back(std::move(call));
  }
  return out;
}

SqlResult<std::size_t> CallStore::expire(Millis now) {
  auto erase = db_.prepare("DELETE FROM calls WHERE state >= ?1 AND finished_at <= ?2");
  if (!erase) return erase.error();
  if (auto done = erase->bind(1, column(State::done)).bind(2, now - limits_.retention.count()).run(); !done)
    return done.error();
  const auto expired = size(db_.changes());
  if (expired > 0) {
    if (auto counted = recount(); !counted) return counted.error();
  }
  return expired;
}

SqlResult<StatsByFunction> CallStore::stats(Millis now) {
  StatsByFunction out;
  for (const auto& [function, count] : deadLettered_) out[function].deadLettered = count;
  auto counts = db_.prepare(
      "SELECT function, state, COUNT(*) FROM calls WHERE state <= ?1 OR (state = ?2 AND finished_at > ?3) "
      "GROUP BY function, state");
  if (!counts) return counts.error();
  counts->bind(1, column(State::running)).bind(2, column(State::failed)).bind(3, now - limits_.retention.count());
  for (;;) {
    auto row = counts->step();
    if (!row) return row.error();
    if (!*row) break;
    FunctionCallStats& stats = out[counts->text(0)];
    const auto count = static_cast<std::uint64_t>(counts->integer(2));
    if (stateOf(counts->integer(1)) == State::failed) {
      stats.deadLetters += count;
    } else {
      stats.queued += count;
    }
  }
  return out;
}

}  // namespace tinyfaas::async_calls
