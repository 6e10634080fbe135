#pragma once
// Function name -> the instances that currently serve it.

#include <atomic>
#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>

#include "proxy/upstream.hpp"

namespace tinyfaas {

using InstanceSet = std::vector<std::shared_ptr<Upstream>>;

// Owned by the data-plane thread; every method runs there (the manager posts
// its changes), so a lookup needs no lock and a publish is atomic for every
// call that starts after it.
class Router {
 public:
  struct Pick {
    bool known = false;                  // the function exists
    std::shared_ptr<Upstream> upstream;  // null when known but no instance is up
  };

  // Replaces the whole instance set of `name`. Calls already running keep
  // their instance; new calls only see the new set. With `heldCalls`, a
  // call finding no instance waits for one (pickOrWait) and is counted
  // there meanwhile, so that the manager starts one.
  void publish(const std::string& name, InstanceSet instances,
               std::shared_ptr<std::atomic<std::size_t>> heldCalls = nullptr);
  void remove(std::string_view name);
  void clear();
  bool contains(std::string_view name) const;

  // Least outstanding calls, stuck instances last; ties go round-robin so
  // idle instances share load.
  Pick pick(std::string_view name);
  // pick(), but when the function holds calls and has no instance up, waits
  // up to `limit` for one to be published.
  boost::asio::awaitable<Pick> pickOrWait(std::string_view name, std::chrono::milliseconds limit);

 private:
  struct Entry {
    InstanceSet instances;
    std::size_t next = 0;
    std::shared_ptr<std::atomic<std::size_t>> heldCalls;
    std::vector<boost::asio::steady_timer*> waiters;  // held calls, woken by a publish
  };
  static void wake(Entry& entry);
  struct Hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
  };
  std::unordered_map<std::string, Entry, Hash, std::equal_to<>> routes_;
};

}  // namespace tinyfaas
