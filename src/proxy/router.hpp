#pragma once
// Function name -> the instances that currently serve it, and the upstreams
// of those instances: the data plane creates, counts, drains and destroys
// them; the manager only names instances by value.

#include <chrono>
#include <cstddef>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>

#include "proxy/upstream.hpp"

namespace tinyfaas {

using InstanceSet = std::vector<std::shared_ptr<Upstream>>;

// One healthy instance as the manager publishes it: plain values, so that
// it crosses threads by copy.
struct InstanceEndpoint {
  std::string id;
  std::filesystem::path socketPath;
  UpstreamOptions options;  // wire protocol (framed) and call limits
};

// Calls in flight, for scaling decisions: a snapshot taken on the data plane.
struct RouterLoad {
  std::unordered_map<std::string, std::size_t> calls;  // instance id -> outstanding calls
  std::unordered_map<std::string, std::size_t> held;   // function -> calls waiting for an instance
};

// Owned by the data-plane thread; every method runs there (the manager posts
// its changes), so a lookup needs no lock and a publish is atomic for every
// call that starts after it.
class Router {
 public:
  struct Pick {
    bool known = false;                  // the function exists
    std::shared_ptr<Upstream> upstream;  // null when known but no instance is up
  };
  // Called on the data plane, once per instance, when a call there outlived
  // its timeout's grace (Upstream::StuckCallback).
  using StuckCallback = std::function<void(const std::string& instanceId)>;

  // Replaces the whole instance set of `name`. Calls already running keep
  // their instance; new calls only see the new set. With `holdsCalls`, a
  // call finding no instance waits for one (pickOrWait) and is counted in
  // load() meanwhile, so that the manager starts one.
  void publish(const std::string& name, InstanceSet instances, bool holdsCalls = false);
  // publish() by value: an instance seen for the first time gets its
  // Upstream, running on `executor` (this thread's), which the router keeps
  // until release().
  void publishInstances(const boost::asio::any_io_executor& executor, const std::string& name,
                        const std::vector<InstanceEndpoint>& instances, bool holdsCalls = false);
  // The instance stopped: its Upstream goes once the calls holding it end.
  void release(const std::string& instanceId);
  // Returns once none of `instanceIds` has a call outstanding, or at `deadline`.
  boost::asio::awaitable<void> drain(std::vector<std::string> instanceIds,
                                     std::chrono::steady_clock::time_point deadline);
  RouterLoad load() const;
  void onStuck(StuckCallback callback) { onStuck_ = std::move(callback); }
  // Called on the data plane when a call starts waiting for a function that
  // has no instance up: whoever starts instances need not wait for its
  // next look at load().
  void onHeld(std::function<void()> callback) { onHeld_ = std::move(callback); }

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
    bool holdsCalls = false;
    std::vector<boost::asio::steady_timer*> waiters;  // held calls, woken by a publish
  };
  static void wake(Entry& entry);
  struct Hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
  };
  std::unordered_map<std::string, Entry, Hash, std::equal_to<>> routes_;
  // Every instance published by value and not yet released.
  std::unordered_map<std::string, std::shared_ptr<Upstream>> upstreams_;
  StuckCallback onStuck_;
  std::function<void()> onHeld_;
};

}  // namespace tinyfaas
