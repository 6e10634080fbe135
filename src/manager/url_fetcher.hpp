#pragma once
// Downloads function archives for POST /uploadURL.

#include <string>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/system/result.hpp>

#include "core/failure.hpp"
#include "manager/fetch_limits.hpp"

namespace tinyfaas {

// Fetches an http:// or https:// URL (following up to 5 redirects, never to
// another scheme) on `worker`, a pool where blocking is fine, and resumes on
// the caller's executor. Errors are one-line reasons without the URL:
// unreachable host, refused address, HTTP status, size or time limit.
// libcurl is in the fetch module
// (manager/fetch_module.hpp), loaded on the first call; when it cannot be
// loaded, the error says so.
boost::asio::awaitable<boost::system::result<std::string, Failure>> fetchUrl(boost::asio::any_io_executor worker,
                                                                             std::string url, FetchLimits limits);

}  // namespace tinyfaas
