#pragma once
// The last lines each function's instances wrote, for GET /logs.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <utility>

#include "core/log_sink.hpp"

namespace tinyfaas {

// Lives on the management thread (backends append there, the API reads there).
class LogStore final : public LogSink {
 public:
  explicit LogStore(std::size_t maxLinesPerFunction = 2000) : maxLines_(maxLinesPerFunction) {}

  void append(std::string_view function, std::string_view instance, std::string_view line) override;
  // Lines as "TIMESTAMP INSTANCE LINE\n"; empty when the function logged nothing.
  std::string read(std::string_view function) const;
  // Every function's lines, grouped by function.
  std::string readAll() const;
  void forget(std::string_view function);

  // Sees every line appended from now on, formatted as read() does (without
  // the newline), while the returned subscription lives; for following logs.
  // A subscription must not outlive its store.
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
  [[nodiscard]] Subscription follow(Follower follower);

 private:
  std::size_t maxLines_;
  std::map<std::string, std::deque<std::string>, std::less<>> lines_;
  std::map<std::uint64_t, Follower> followers_;
  std::uint64_t nextFollowerId_ = 0;
};

}  // namespace tinyfaas
