#pragma once

#include <optional>
#include <type_traits>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>

#include "util/async_sync.hpp"

namespace tinyfaas {

// Runs `f` on `target` (another loop or a worker pool) and resumes the
// calling coroutine on its own executor with f's result. (A co_spawn onto the
// other executor awaited with use_awaitable looks simpler, but GCC 12
// destroyed the captured state twice in that form.)
template <class F>
boost::asio::awaitable<std::invoke_result_t<F&>> runOn(const boost::asio::any_io_executor& target, F& f) {
  namespace asio = boost::asio;
  using Result = std::invoke_result_t<F&>;
  auto home = co_await asio::this_coro::executor;
  AsyncEvent done(home);
  if constexpr (std::is_void_v<Result>) {
    asio::post(target, [&f, &done, home] {
      f();
      asio::post(home, [&done] { done.set(); });
    });
    co_await done.wait();
  } else {
    std::optional<Result> result;
    asio::post(target, [&f, &done, &result, home] {
      result.emplace(f());
      asio::post(home, [&done] { done.set(); });
    });
    co_await done.wait();
    co_return std::move(*result);
  }
}

}  // namespace tinyfaas
