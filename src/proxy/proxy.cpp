#include "proxy/proxy.hpp"

namespace tinyfaas {

namespace asio = boost::asio;

Proxy::Proxy(asio::any_io_executor executor, Router& router, ProxyOptions options)
    : executor_(std::move(executor)), router_(router), options_(options) {}

asio::awaitable<CallResult> Proxy::invoke(Invocation invocation) {
  Router::Pick pick = router_.pick(invocation.function);
  // A function scaled to zero holds the call while its first instance
  // starts; only such a call pays for the waiting coroutine.
  if (pick.known && !pick.upstream) pick = co_await router_.pickOrWait(invocation.function, options_.coldStartWait);
  if (!pick.known) co_return CallResult{CallStatus::notFound, "function " + invocation.function + " not found"};
  if (!pick.upstream)
    co_return CallResult{CallStatus::unavailable, "function " + invocation.function + " has no running instance"};
  // Holding the shared_ptr keeps the instance's pool alive even if a redeploy
  // swaps it out of the router mid-call.
  std::shared_ptr<Upstream> upstream = std::move(pick.upstream);
  CallResult result = co_await upstream->call(invocation);
  if (!result.retryable) co_return result;
  // An instance that just died refuses connections until the manager notices
  // and takes it out of the routes; another instance can take the call.
  Router::Pick retry = router_.pick(invocation.function);
  if (!retry.upstream || retry.upstream == upstream) co_return result;
  upstream = std::move(retry.upstream);
  co_return co_await upstream->call(invocation);
}

}  // namespace tinyfaas
