#include "backend/standby/warm_pool.hpp"

#include <algorithm>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <spdlog/spdlog.h>

#include "backend/standby/handler_control.hpp"

namespace tinyfaas {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;

WarmPool::WarmPool(asio::any_io_executor executor, std::size_t perRuntime, StartStandby start, EndStandby end)
    : perRuntime_(perRuntime),
      start_(std::move(start)),
      end_(std::move(end)),
      changed_(executor),
      backoff_(executor),
      refillTimer_(executor) {}

void WarmPool::keep(const std::set<Runtime>& runtimes) {
  std::set<Runtime> launchers;
  for (Runtime runtime : runtimes) {
    if (!unsupported_.contains(standbyLauncher(runtime))) launchers.insert(standbyLauncher(runtime));
  }
  if (launchers == wanted_) return;
  wanted_ = std::move(launchers);
  changed_.set();
}

std::unique_ptr<Standby> WarmPool::take(Runtime runtime) {
  const Runtime launcher = standbyLauncher(runtime);
  auto it = standbys_.find(launcher);
  if (it == standbys_.end()) return nullptr;
  auto& list = it->second;
  for (auto candidate = list.begin(); candidate != list.end(); ++candidate) {
    Standby& standby = **candidate;
    if (standby.ended()) continue;  // refill() cleans it up
    if (saidStandby(standby.control, true)) {
      std::unique_ptr<Standby> taken = std::move(*candidate);
      list.erase(candidate);
      failures_.erase(launcher);
      return taken;
    }
    if (Clock::now() - standby.started > kGreetingLimit && !unsupported_.contains(launcher)) {
      spdlog::warn(
          "the {} handler never said it was up as a standby in {} s: it does not support standbys, and "
          "{} instances start without them from now on",
          toString(launcher), kGreetingLimit.count(), toString(launcher));
      unsupported_.insert(launcher);
      wanted_.erase(launcher);
      changed_.set();
      return nullptr;
    }
  }
  return nullptr;
}

void WarmPool::replenish() {
  refillTimer_.expires_after(kRefillDelay);
  refillTimer_.async_wait([this](boost::system::error_code ec) {
    if (!ec) changed_.set();
  });
}

std::size_t WarmPool::size() const {
  std::size_t n = 0;
  for (const auto& entry : standbys_) n += entry.second.size();
  return n;
}

std::size_t WarmPool::up(Runtime runtime) {
  auto it = standbys_.find(standbyLauncher(runtime));
  if (it == standbys_.end()) return 0;
  return std::count_if(it->second.begin(), it->second.end(),
                       [](const auto& standby) { return !standby->ended() && saidStandby(standby->control, false); });
}

std::map<Runtime, std::size_t> WarmPool::upPerLauncher() {
  std::map<Runtime, std::size_t> counts;
  for (Runtime launcher : {Runtime::nodejs, Runtime::python3, Runtime::binary}) {
    if (const std::size_t n = up(launcher); n > 0) counts[launcher] = n;
  }
  return counts;
}

asio::awaitable<void> WarmPool::run() {
  while (!stopped_) {
    co_await changed_.wait();
    changed_.reset();
    co_await refill();
  }
  for (auto& entry : standbys_) {
    for (auto& standby : entry.second) ended_.push_back(std::move(standby));
  }
  standbys_.clear();
  std::vector<std::unique_ptr<Standby>> ending = std::move(ended_);
  for (auto& standby : ending) co_await end_(std::move(standby));
}

void WarmPool::stop() {
  stopped_ = true;
  backoff_.cancel();
  refillTimer_.cancel();
  changed_.set();
}

asio::awaitable<void> WarmPool::refill() {
  // Ended ones first: they hold a cgroup and a folder each.
  for (auto& entry : standbys_) {
    auto& list = entry.second;
    for (auto it = list.begin(); it != list.end();) {
      const bool unwanted = !wanted_.contains(entry.first);
      if ((*it)->ended() || unwanted) {
        ended_.push_back(std::move(*it));
        it = list.erase(it);
      } else {
        ++it;
      }
    }
  }
  std::vector<std::unique_ptr<Standby>> ending = std::move(ended_);
  for (auto& standby : ending) co_await end_(std::move(standby));

  for (Runtime launcher : std::set<Runtime>(wanted_)) {
    if (stopped_) co_return;
    if (standbys_[launcher].size() >= perRuntime_) continue;
    if (const int failed = failures_[launcher]; failed > 0) {
      const std::chrono::milliseconds delay(500L << std::min(failed - 1, 7));
      backoff_.expires_after(std::min<std::chrono::milliseconds>(delay, std::chrono::minutes(1)));
      co_await backoff_.async_wait(asio::as_tuple(asio::use_awaitable));
      if (stopped_ || !wanted_.contains(launcher)) continue;
    }
    auto& list = standbys_[launcher];
    while (list.size() < perRuntime_ && !stopped_) {
      auto started = co_await start_(launcher);
      if (!started) {
        spdlog::warn("cannot start a standby {} handler: {}", toString(launcher), started.error());
        ++failures_[launcher];
        changed_.set();  // try again after the backoff
        break;
      }
      Standby* standby = started->get();
      standby->started = Clock::now();
      // Before any handover: it ended by itself (a broken interpreter).
      standby->onEnd([this, standby](std::string how) {
        spdlog::warn("a standby {} handler {} before it was needed", toString(standby->launcher), how);
        ++failures_[standby->launcher];
        changed_.set();
      });
      list.push_back(std::move(*started));
    }
  }
}

}  // namespace tinyfaas
