#pragma once

#include <chrono>
#include <filesystem>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

namespace tinyfaas {

// One GET /health on a handler's socket; true when it answered 200.
boost::asio::awaitable<bool> probeHealth(boost::asio::any_io_executor executor, std::filesystem::path socket,
                                         std::chrono::milliseconds timeout);

}  // namespace tinyfaas
