#include "daemon/graceful_shutdown.hpp"

#include <numeric>

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <spdlog/spdlog.h>

#include "core/async.hpp"
#include "util/run_on.hpp"

namespace tinyfaas {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;

namespace {

constexpr auto kPoll = std::chrono::milliseconds(20);
constexpr auto kProgressLog = std::chrono::seconds(5);
// After the cut: time for the error answers to leave (CoAP's confirmable
// ones until the client acknowledges them).
constexpr auto kDeliveryGrace = std::chrono::seconds(1);
// After the last call: time for CoAP clients to acknowledge confirmable
// answers. A live client does so within a round trip (or after the first
// retransmission, 2 to 3 s); one that gave up before its answer never does,
// and would otherwise keep the drain waiting for the whole timeout.
constexpr auto kAcknowledgeWait = std::chrono::seconds(3);

double secondsSince(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

}  // namespace

GracefulShutdown::GracefulShutdown(std::vector<DrainTarget> targets, std::chrono::seconds timeout)
    : targets_(std::move(targets)), timeout_(timeout) {}

std::size_t GracefulShutdown::Counts::total() const {
  return std::accumulate(calls.begin(), calls.end(), std::size_t{0});
}

asio::awaitable<GracefulShutdown::Counts> GracefulShutdown::count() {
  Counts counts;
  for (const DrainTarget& target : targets_) {
    Drainable* endpoint = target.endpoint;
    auto probe = [endpoint] { return std::pair{endpoint->callsInFlight(), endpoint->delivering()}; };
    const auto [calls, delivering] = co_await runOn(target.executor, probe);
    counts.calls.push_back(calls);
    if (delivering) counts.delivering += (counts.delivering.empty() ? "" : ", ") + target.name;
  }
  co_return counts;
}

std::string GracefulShutdown::describe(const Counts& counts) const {
  std::string text;
  for (std::size_t i = 0; i < targets_.size(); ++i) {
    if (counts.calls[i] == 0) continue;
    if (!text.empty()) text += ", ";
    text += targets_[i].name + " " + std::to_string(counts.calls[i]);
  }
  return text;
}

bool GracefulShutdown::awaitAcknowledgements(const Counts& counts) {
  if (counts.delivering.empty()) return false;
  if (!acknowledgeSince_) {
    acknowledgeSince_ = Clock::now();
    spdlog::info("shutdown: no call runs; waiting up to {} s for {} clients to acknowledge their answers",
                 std::chrono::duration_cast<std::chrono::seconds>(kAcknowledgeWait).count(), counts.delivering);
    return true;
  }
  if (Clock::now() - *acknowledgeSince_ < kAcknowledgeWait) return true;
  spdlog::info(
      "shutdown: {} answers still unacknowledged after {} s: their clients gave up or are gone; not "
      "waiting for them",
      counts.delivering, std::chrono::duration_cast<std::chrono::seconds>(kAcknowledgeWait).count());
  return false;
}

asio::awaitable<void> GracefulShutdown::drain() {
  const auto started = Clock::now();
  const auto deadline = started + timeout_;
  for (const DrainTarget& target : targets_) {
    Drainable* endpoint = target.endpoint;
    auto stop = [endpoint] { endpoint->stopAccepting(); };
    co_await runOn(target.executor, stop);
  }
  Counts counts = co_await count();
  const std::size_t atStart = counts.total();
  if (atStart == 0) {
    spdlog::info("shutdown: no calls in flight; no new ones are taken");
  } else {
    spdlog::info(
        "shutdown: no new calls are taken; waiting up to {} s for {} in flight ({}); "
        "a second SIGTERM or SIGINT cuts the wait short",
        timeout_.count(), atStart, describe(counts));
  }

  asio::steady_timer timer(co_await asio::this_coro::executor);
  auto nextLog = started + kProgressLog;
  while ((counts.total() > 0 || awaitAcknowledgements(counts)) && Clock::now() < deadline && !hurried_) {
    timer.expires_after(kPoll);
    co_await timer.async_wait(useTuple);
    counts = co_await count();
    if (counts.total() > 0) acknowledgeSince_.reset();
    if (counts.total() > 0 && Clock::now() >= nextLog) {
      spdlog::info("shutdown: still waiting for {} call(s) ({})", counts.total(), describe(counts));
      nextLog += kProgressLog;
    }
  }

  const std::size_t left = counts.total();
  if (left == 0) {
    if (atStart > 0) spdlog::info("shutdown: all {} call(s) finished in {:.1f} s", atStart, secondsSince(started));
    co_return;
  }
  const std::string why =
      hurried_ ? "a second signal cut the wait short"
               : "the call did not finish within the shutdown timeout (" + std::to_string(timeout_.count()) + " s)";
  const std::string reason = "tinyFaaS is shutting down: " + why;
  spdlog::warn(
      "shutdown: cutting {} call(s) short after {:.1f} s ({}): {}; each gets an error answer (503, 5.03 "
      "or UNAVAILABLE), asynchronous ones end with their instances; {} of the {} in flight at the start "
      "finished",
      left, secondsSince(started), describe(counts), hurried_ ? "second signal" : "deadline passed",
      atStart > left ? atStart - left : 0, atStart);
  for (const DrainTarget& target : targets_) {
    Drainable* endpoint = target.endpoint;
    auto cut = [endpoint, &reason] { endpoint->cutShort(reason); };
    co_await runOn(target.executor, cut);
  }
  const auto graceEnd = Clock::now() + kDeliveryGrace;
  do {
    timer.expires_after(kPoll);
    co_await timer.async_wait(useTuple);
    counts = co_await count();
  } while (!counts.delivering.empty() && Clock::now() < graceEnd);
}

}  // namespace tinyfaas
