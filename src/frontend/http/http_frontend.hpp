#pragma once
// HTTP endpoint: GET|POST /NAME runs function NAME with the body as input.

#include <memory>

#include <boost/asio/any_io_executor.hpp>
#include <boost/system/result.hpp>

#include "core/invoker.hpp"
#include "net/http_server.hpp"

namespace tinyfaas {

// Turns one HTTP request into an Invocation and the result into a response.
// Exposed for tests; runs on the data-plane thread.
boost::asio::awaitable<HttpResponse> handleFunctionRequest(Invoker& invoker, HttpRequest& request);

// Starts the endpoint on the data-plane executor.
boost::system::result<std::unique_ptr<HttpServer>, std::string> startHttpFrontend(boost::asio::any_io_executor executor,
                                                                                  Invoker& invoker,
                                                                                  HttpServerOptions options);

}  // namespace tinyfaas
