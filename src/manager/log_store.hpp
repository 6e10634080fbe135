#pragma once
// The last lines each function's instances wrote, for GET /logs, and who
// may read them.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>

#include "core/log_sink.hpp"
#include "manager/function_config.hpp"

namespace tinyfaas {

// Bounds of the store; beyond any of them the oldest lines go first.
struct LogLimits {
  std::size_t maxLinesPerFunction = 2000;
  std::size_t maxFunctions = 1024;  // names holding lines
  std::size_t maxBytes = 4 << 20;   // all lines with their bookkeeping
};

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

  void append(std::string_view function, std::string_view instance, std::string_view line) override;
  // From now on `function`'s lines are `owner`'s ("" for a daemon without
  // tokens: admins only). Lines written under another owner, or none, are
  // forgotten.
  void claim(std::string_view function, const std::string& owner);
  // Forgets the function's lines and its owner.
  void forget(std::string_view function);

  // Lines as "TIMESTAMP INSTANCE LINE\n" that `scope` may read; empty when
  // there are none.
  std::string read(std::string_view function, const Scope& scope = {}) const;
  // Every function's lines `scope` may read, grouped by function.
  std::string readAll(const Scope& scope = {}) const;

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
    std::deque<Line> lines;
  };
  using Functions = std::map<std::string, Function, std::less<>>;

  static bool mayRead(const Scope& scope, const Function& function);
  static std::size_t cost(const Line& line) { return sizeof(Line) + line.text.size(); }
  void dropOldestLine(Functions::iterator function);
  void dropLines(Function& function, std::string_view name);

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
