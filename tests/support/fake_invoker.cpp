#include "fake_invoker.hpp"

#include <utility>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace tinyfaas::test {

namespace asio = boost::asio;

Behaviour answers(CallResult result) {
  Behaviour b;
  b.result = std::move(result);
  return b;
}

Behaviour answers(CallStatus status, std::string body, std::chrono::milliseconds delay) {
  Behaviour b = answers(CallResult{status, std::move(body)});
  b.delay = delay;
  return b;
}

Behaviour echoes() {
  Behaviour b;
  b.echo = true;
  return b;
}

Behaviour gated(std::string body) {
  Behaviour b = answers(CallStatus::ok, std::move(body));
  b.gated = true;
  return b;
}

void FakeInvoker::set(const std::string& function, Behaviour behaviour) {
  std::lock_guard lock(mutex_);
  behaviours_[function] = std::move(behaviour);
}

void FakeInvoker::setDefault(Behaviour behaviour) {
  std::lock_guard lock(mutex_);
  default_ = std::move(behaviour);
}

void FakeInvoker::expectThread(std::thread::id loop) {
  std::lock_guard lock(mutex_);
  thread_ = loop;
}

std::optional<Behaviour> FakeInvoker::behaviourOf(const std::string& function) const {
  if (auto it = behaviours_.find(function); it != behaviours_.end()) return it->second;
  return default_;
}

asio::awaitable<CallResult> FakeInvoker::invoke(Invocation invocation) {
  std::optional<Behaviour> behaviour;
  {
    std::lock_guard lock(mutex_);
    if (thread_ && std::this_thread::get_id() != *thread_) offThread_ = true;
    invocations_.push_back(invocation);
    ++calls_[invocation.function];
    behaviour = behaviourOf(invocation.function);
  }
  if (!behaviour) co_return CallResult{CallStatus::notFound, "function " + invocation.function + " not found"};

  auto executor = co_await asio::this_coro::executor;
  if (behaviour->gated) {
    auto gate = std::make_shared<asio::steady_timer>(executor, std::chrono::seconds(30));
    gates_.push_back(gate);
    (void)co_await gate->async_wait(asio::as_tuple(asio::use_awaitable));
  } else if (behaviour->delay.count() > 0) {
    asio::steady_timer timer(executor, behaviour->delay);
    (void)co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
  }
  CallResult result = behaviour->result;
  if (behaviour->echo) result = CallResult{CallStatus::ok, invocation.payload};
  {
    std::lock_guard lock(mutex_);
    ++completed_[invocation.function];
  }
  co_return result;
}

boost::asio::awaitable<DetachedCall> FakeInvoker::invokeDetached(Invocation invocation) {
  std::lock_guard lock(mutex_);
  detachedInvocations_.push_back(invocation);
  ++detached_[invocation.function];
  const std::optional<Behaviour> behaviour = behaviourOf(invocation.function);
  const CallStatus status = behaviour ? behaviour->detached : CallStatus::notFound;
  if (status == CallStatus::ok) co_return DetachedCall{status, detachedId(++accepted_), {}};
  co_return DetachedCall{status, {}, std::string(toString(status)) + " (" + invocation.function + ")"};
}

boost::asio::awaitable<std::optional<AsyncCallRecord>> FakeInvoker::detachedCall(std::string id) {
  std::lock_guard lock(mutex_);
  auto it = records_.find(id);
  if (it == records_.end()) co_return std::nullopt;
  co_return it->second;
}

void FakeInvoker::setRecord(const std::string& id, AsyncCallRecord record) {
  std::lock_guard lock(mutex_);
  records_[id] = std::move(record);
}

std::string FakeInvoker::detachedId(std::size_t n) {
  std::string digits = std::to_string(n);
  return std::string(32 - digits.size(), '0') + digits;
}

void FakeInvoker::openGates() {
  for (auto& gate : gates_) gate->cancel();
  gates_.clear();
}

std::size_t FakeInvoker::waiting() const { return gates_.size(); }

namespace {

std::size_t countOf(const std::map<std::string, std::size_t>& counts, const std::string& function) {
  auto it = counts.find(function);
  return it == counts.end() ? 0 : it->second;
}

}  // namespace

std::size_t FakeInvoker::calls(const std::string& function) const {
  std::lock_guard lock(mutex_);
  return countOf(calls_, function);
}

std::size_t FakeInvoker::detachedCalls(const std::string& function) const {
  std::lock_guard lock(mutex_);
  return countOf(detached_, function);
}

std::size_t FakeInvoker::completed(const std::string& function) const {
  std::lock_guard lock(mutex_);
  return countOf(completed_, function);
}

std::size_t FakeInvoker::completed() const {
  std::lock_guard lock(mutex_);
  std::size_t total = 0;
  for (const auto& [function, count] : completed_) total += count;
  return total;
}

std::vector<Invocation> FakeInvoker::invocations() const {
  std::lock_guard lock(mutex_);
  return invocations_;
}

std::vector<Invocation> FakeInvoker::detachedInvocations() const {
  std::lock_guard lock(mutex_);
  return detachedInvocations_;
}

void FakeInvoker::forgetCalls() {
  std::lock_guard lock(mutex_);
  invocations_.clear();
  detachedInvocations_.clear();
  calls_.clear();
  detached_.clear();
  completed_.clear();
}

bool FakeInvoker::ranOffThread() const {
  std::lock_guard lock(mutex_);
  return offThread_;
}

}  // namespace tinyfaas::test
