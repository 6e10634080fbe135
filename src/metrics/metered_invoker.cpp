#include "metrics/metered_invoker.hpp"

#include <chrono>

namespace tinyfaas::metrics {

boost::asio::awaitable<CallResult> MeteredInvoker::invoke(Invocation invocation) {
  FunctionStats* function = metrics_.find(invocation.function);
  if (!function) {
    CallResult result = co_await inner_.invoke(std::move(invocation));
    // Deployed meanwhile: rare enough to leave uncounted.
    if (result.status == CallStatus::notFound) metrics_.countUnknown(protocol_);
    co_return result;
  }
  ProtocolStats& stats = function->of(protocol_);
  ++stats.inFlight;
  const auto start = std::chrono::steady_clock::now();
  CallResult result = co_await inner_.invoke(std::move(invocation));
  stats.latency.observe(std::chrono::steady_clock::now() - start);
  --stats.inFlight;
  ++stats.calls;
  ++stats.outcomes[static_cast<std::size_t>(result.status)];
  co_return result;
}

boost::asio::awaitable<DetachedCall> MeteredInvoker::invokeDetached(Invocation invocation) {
  // Its stats are looked up after the wait: the function may be deleted meanwhile.
  const std::string name = invocation.function;
  DetachedCall accepted = co_await inner_.invokeDetached(std::move(invocation));
  const CallStatus status = accepted.status;
  FunctionStats* function = metrics_.find(name);
  if (status == CallStatus::notFound) {
    metrics_.countUnknown(protocol_);
  } else if (function && status == CallStatus::ok) {
    ++function->of(protocol_).asyncAccepted;
  } else if (function) {
    // Refused (a full queue): a failed call that never ran, so no latency.
    ProtocolStats& stats = function->of(protocol_);
    ++stats.calls;
    ++stats.outcomes[static_cast<std::size_t>(status)];
  }
  co_return accepted;
}

}  // namespace tinyfaas::metrics
