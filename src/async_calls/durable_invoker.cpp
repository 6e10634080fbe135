#include "async_calls/durable_invoker.hpp"

namespace tinyfaas::async_calls {

boost::asio::awaitable<DetachedCall> DurableInvoker::invokeDetached(Invocation invocation) {
  if (!router_.contains(invocation.function) && !(elsewhere_ && elsewhere_(invocation.function)))
    co_return DetachedCall{CallStatus::notFound, {}, "function " + invocation.function + " not found"};
  co_return co_await queue_.enqueue(std::move(invocation));
}

}  // namespace tinyfaas::async_calls
