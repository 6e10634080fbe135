#pragma once
// The last lines each function's instances wrote, for GET /logs, and who
// may read them; kept on disk too, so that they survive a restart.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/system/result.hpp>

#include "core/log_sink.hpp"
#include "manager/function_config.hpp"

namespace tinyfaas {

// Bounds of the store; beyond any of them the oldest lines go first.
struct LogLimits {
  std::size_t maxLinesPerFunction = 2000;
  std::size_t maxFunctions = 1024;  // names holding lines
  std::size_t maxBytes = 4 << 20;   // all lines with their bookkeeping
  // On disk: a function's file is rotated (one older file kept) past
  // maxFileBytes; past maxDiskBytes in all, the oldest functions' older
  // files go first, then their current ones.
  std::size_t maxFileBytes = 256 << 10;
  std::size_t maxDiskBytes = 32 << 20;
  // Lines reach the disk this often (and at shutdown, and when a buffer
  // grows large): no write, let alone fsync, per line on an SD card.
  std::chrono::milliseconds flushInterval{2000};
};

// Which of the lines GET /logs answers.
struct LogQuery {
  std::optional<std::size_t> tail;                             // the last N lines only
  std::optional<std::chrono::system_clock::time_point> since;  // lines written at or after
};

// The query of GET /logs?tail=N&since=DURATION (either may be absent):
// tail a whole number, since a duration such as 30s, 10m, 2h, 1d or 1h30m
// before `now`; the error names the parameter.
boost::system::result<LogQuery, std::string> parseLogQuery(std::optional<std::string_view> tail,
                                                           std::optional<std::string_view> since,
                                                           std::chrono::system_clock::time_point now);

// Lives on the management thread (backends append there, the API reads there).
//
// Each name has an owner, the tenant whose function it is: lines belong to
// the owner of their name at the moment they are written, and only that
// tenant (and admins) reads them. A name nobody claimed (a function being
// deleted, a deploy that failed) keeps its lines for admins only, and a new
// owner's claim drops them, so the next owner of a name never sees its
// predecessor's lines.
class LogStore final : public LogSink {
 public:
  explicit LogStore(LogLimits limits = {}) : limits_(limits) {}
  ~LogStore() override;
  LogStore(const LogStore&) = delete;
  LogStore& operator=(const LogStore&) = delete;

  // Reads the lines kept in `dir` (a private directory, made if missing)
  // and from now on writes every line there too, flushed on `executor`
  // every flushInterval and when the store is destroyed.
  boost::system::result<void, std::string> keepIn(std::filesystem::path dir, boost::asio::any_io_executor executor);
  // Writes what is buffered.
  void flush();
  // At shutdown: writes what is buffered and ends the timed flushes, whose
  // pending timer would keep the loop (and the daemon) up to flushInterval
  // longer; later lines are written when the store is destroyed.
  void stopTimedFlushes();

  void append(std::string_view function, std::string_view instance, std::string_view line) override;
  // From now on `function`'s lines are `owner`'s ("" for a daemon without
  // tokens: admins only). Lines written under another owner, or none, are
  // forgotten.
  void claim(std::string_view function, const std::string& owner);
  // Forgets the function's lines and its owner.
  void forget(std::string_view function);
  // The name is no function (its deploy failed): its lines stay for their
  // owner until a new claim or until the bounds drop them, and then the
  // name goes too.
  void release(std::string_view function);
  // Forgets the released names (failed deploys) whose lines `scope` may read:
  // a wipe leaves none of them.
  void forgetReleased(const Scope& scope);

  // Lines as "TIMESTAMP INSTANCE LINE\n" that `scope` may read; empty when
  // there are none.
  std::string read(std::string_view function, const Scope& scope = {}, const LogQuery& query = {}) const;
  // Every function's lines `scope` may read, in the order they were written.
  std::string readAll(const Scope& scope = {}, const LogQuery& query = {}) const;

  // Sees every line appended from now on that `scope` may read, formatted as
  // read() does (without the newline), while the returned subscription
  // lives; for following logs. A subscription must not outlive its store.
  using Follower = std::function<void(std::string_view function, std::string_view entry)>;
  class Subscription {
   public:
    Subscription(LogStore* store, std::uint64_t id) : store_(store), id_(id) {}
    Subscription(Subscription&& other) noexcept : store_(std::exchange(other.store_, nullptr)), id_(other.id_) {}
    Subscription& operator=(Subscription&&) = delete;
    ~Subscription() {
      if (store_) store_->followers_.erase(id_);
    }

   private:
    LogStore* store_;
    std::uint64_t id_;
  };
  [[nodiscard]] Subscription follow(Scope scope, Follower follower);

 private:
  struct Line {
    std::uint64_t sequence;
    std::string text;
  };
  struct Function {
    std::optional<std::string> owner;  // nobody: admins only
    bool claimed = false;              // a function's: kept without lines
    std::deque<Line> lines;
    std::string unwritten;         // lines not yet on disk
    std::size_t fileBytes = 0;     // NAME.log, its owner line included
    std::size_t rotatedBytes = 0;  // NAME.log.1
  };
  using Functions = std::map<std::string, Function, std::less<>>;

  static bool mayRead(const Scope& scope, const Function& function);
  static std::size_t cost(const Line& line) { return sizeof(Line) + line.text.size(); }
  void add(Functions::iterator function, std::string entry, std::uint64_t sequence);
  void dropOldestLine(Functions::iterator function);
  void dropLines(Function& function, std::string_view name);
  // Lines of readable functions that the query selects, oldest first.
  std::string render(std::vector<const Line*> lines, const LogQuery& query) const;
  void collect(const Function& function, const Scope& scope, std::vector<const Line*>& out) const;

  // Disk: NAME.log and NAME.log.1 in dir_, each starting with its owner.
  std::filesystem::path file(std::string_view name, bool rotated = false) const;
  void removeFiles(Function& function, std::string_view name);
  void write(Functions::value_type& function);
  void keepWithinDisk();
  void load();
  void scheduleFlush();
  std::size_t diskBytes_ = 0;
  std::size_t unwrittenBytes_ = 0;
  std::filesystem::path dir_;  // empty: memory only
  std::optional<boost::asio::steady_timer> flushTimer_;
  bool flushScheduled_ = false;

  LogLimits limits_;
  Functions functions_;
  // (sequence of its oldest line, name) of every function holding lines:
  // the oldest line of the whole store is first.
  std::set<std::pair<std::uint64_t, std::string_view>> oldest_;
  std::size_t bytes_ = 0;
  std::uint64_t nextSequence_ = 0;
  std::map<std::uint64_t, std::pair<Scope, Follower>> followers_;
  std::uint64_t nextFollowerId_ = 0;
};

}  // namespace tinyfaas
