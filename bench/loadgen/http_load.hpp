#pragma once
// HTTP/1.1 clients: one keep-alive connection per client, over TCP or a
// Unix socket (a function handler's own socket, to measure it without the
// proxy).

#include "client_job.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

#include <cstddef>

namespace tinyfaas::bench {

struct HttpPlan {
  // Copied by every client once; the same bytes go out on every call.
  boost::beast::http::request<boost::beast::http::string_body> request;
  std::size_t maxResponseBytes = 16 * 1024 * 1024;
};

boost::asio::awaitable<void> runHttpClient(ClientJob& job, const HttpPlan& plan,
                                           boost::asio::ip::tcp::endpoint endpoint);
boost::asio::awaitable<void> runHttpClient(ClientJob& job, const HttpPlan& plan,
                                           boost::asio::local::stream_protocol::endpoint endpoint);

}  // namespace tinyfaas::bench
