#pragma once
// The operator-facing HTTP API, compatible with upstream tinyFaaS:
// /upload, /uploadURL, /delete, /list, /wipe, /logs.

#include <boost/asio/awaitable.hpp>

#include "manager/function_manager.hpp"
#include "manager/log_store.hpp"
#include "net/http_server.hpp"

namespace tinyfaas {

// Ports of the enabled function endpoints, for the URLs /upload answers
// with; -1 when disabled.
struct EndpointPorts {
  int coap = -1;
  int http = -1;
  int grpc = -1;
};

// Lives on the management thread.
class ManagementApi {
 public:
  ManagementApi(FunctionManager& manager, LogStore& logs, EndpointPorts ports);
  boost::asio::awaitable<HttpResponse> handle(HttpRequest& request);

 private:
  boost::asio::awaitable<HttpResponse> upload(HttpRequest& request);
  HttpResponse endpointsFor(const HttpRequest& request, const std::string& name) const;

  FunctionManager& manager_;
  LogStore& logs_;
  EndpointPorts ports_;
};

}  // namespace tinyfaas
