#pragma once
// Standbys kept per runtime: sandboxes (or containers) with the runtime
// started and no function, so that starting an instance is a handover (its
// code linked in, its limits and environment set) instead of a sandbox and
// an interpreter starting. Both backends use it, each with standbys of its
// own kind (standby.hpp). Kept only for the runtimes of deployed functions, so an idle
// node without functions runs none. Each standby serves at most one
// function: it is never given back (no tenant's state can reach another).
// Lives on the management thread.

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/system/result.hpp>

#include "backend/standby/standby.hpp"
#include "util/async_sync.hpp"

namespace tinyfaas {

class WarmPool {
 public:
  // Starts a standby (its process or container started; the runtime may
  // still boot when it returns).
  using StartStandby =
      std::function<boost::asio::awaitable<boost::system::result<std::unique_ptr<Standby>, std::string>>(Runtime)>;
  // Ends one, whatever its state, and removes what it left.
  using EndStandby = std::function<boost::asio::awaitable<void>(std::unique_ptr<Standby>)>;

  WarmPool(boost::asio::any_io_executor executor, std::size_t perRuntime, StartStandby start, EndStandby end);

  // The runtimes of the deployed functions.
  void keep(const std::set<Runtime>& runtimes);
  // A standby for `runtime` that said it is up, or null when none did.
  std::unique_ptr<Standby> take(Runtime runtime);
  // A standby that has not said it is up by then never will: its handler
  // does not know standbys (a custom --binary-handler), and that runtime
  // gets none from then on.
  static constexpr std::chrono::seconds kGreetingLimit{30};
  // Starts standbys in place of those taken, kRefillDelay after a handover
  // is done: a standby's start holds up this thread for milliseconds and
  // its interpreter's start takes the CPU for a hundred, which the new
  // instance's first calls need more.
  void replenish();
  static constexpr std::chrono::milliseconds kRefillDelay{200};
  // Keeps the pool filled until stop(); then ends every standby.
  boost::asio::awaitable<void> run();
  void stop();

  std::size_t size() const;                        // started, up or not
  std::size_t up(Runtime runtime);                 // said they are up: take() would hand one out
  std::map<Runtime, std::size_t> upPerLauncher();  // up(), for each launcher with any

 private:
  boost::asio::awaitable<void> refill();

  std::size_t perRuntime_;
  StartStandby start_;
  EndStandby end_;
  std::set<Runtime> wanted_;       // launchers
  std::set<Runtime> unsupported_;  // launchers whose handler never said it was up
  std::map<Runtime, std::vector<std::unique_ptr<Standby>>> standbys_;
  std::vector<std::unique_ptr<Standby>> ended_;  // ended before a handover; to clean up
  // Standbys of a launcher that ended before a handover, in a row: the
  // next start waits, doubling, so a broken runtime does not spin.
  std::map<Runtime, int> failures_;
  AsyncEvent changed_;
  boost::asio::steady_timer backoff_;
  boost::asio::steady_timer refillTimer_;
  bool stopped_ = false;
};

}  // namespace tinyfaas
