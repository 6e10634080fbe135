#include "util/pidfd.hpp"

#include <poll.h>

#include "core/async.hpp"

namespace tinyfaas {

namespace asio = boost::asio;

asio::awaitable<boost::system::error_code> awaitProcessEnd(asio::posix::stream_descriptor& pidfd) {
  for (;;) {
    auto [ec] = co_await pidfd.async_wait(asio::posix::stream_descriptor::wait_read, useTuple);
    if (ec) co_return ec;
    pollfd ready{pidfd.native_handle(), POLLIN, 0};
    if (::poll(&ready, 1, 0) == 1 && (ready.revents & POLLIN) != 0) co_return boost::system::error_code{};
  }
}

}  // namespace tinyfaas
