#pragma once
// Waiting for a process's end through its pidfd on an asio loop.

#include <boost/asio/awaitable.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/system/error_code.hpp>

namespace tinyfaas {

// Completes once the process behind `pidfd` has ended (an empty error
// code), or with the error that made the descriptor unusable (cancelled,
// closed). A readiness report is confirmed with poll() before it is
// believed: Boost 1.81's epoll reactor can hand a descriptor a readiness
// event that was queued for the descriptor whose reactor state it took
// over, and a wait, unlike a read, has nothing to find that out with.
boost::asio::awaitable<boost::system::error_code> awaitProcessEnd(boost::asio::posix::stream_descriptor& pidfd);

}  // namespace tinyfaas
