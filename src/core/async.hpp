#pragma once
// Completion tokens used across the project: errors a peer can cause come
// back as values (error_code first in a tuple), never as exceptions.

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace tinyfaas {

inline constexpr auto useTuple = boost::asio::as_tuple(boost::asio::use_awaitable);

}  // namespace tinyfaas
