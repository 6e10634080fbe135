#pragma once
// /logs across the cluster: each node answers requests for a function's
// log lines on "tinyfaas.logs.NODE", and gathers the lines of the other
// nodes that run a function for its own GET /logs?name=.

#include <string>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include "manager/function_config.hpp"
#include "manager/log_store.hpp"

struct __natsConnection;
struct __natsSubscription;

namespace tinyfaas::cluster {

// Lives on the management thread, with the LogStore it reads; requests to
// other nodes block, so they run on `io` (the cluster's thread).
class LogExchange {
 public:
  LogExchange(boost::asio::any_io_executor management, boost::asio::any_io_executor io, __natsConnection* connection,
              std::string nodeName, LogStore& logs);
  ~LogExchange();
  LogExchange(const LogExchange&) = delete;
  LogExchange& operator=(const LogExchange&) = delete;

  // The lines of `function` within `scope` that `nodes` have, one node
  // after the other; a node that does not answer within a second is left out.
  boost::asio::awaitable<std::string> gather(std::string function, Scope scope, LogQuery query,
                                             std::vector<std::string> nodes);

 private:
  struct Shared;
  boost::asio::any_io_executor io_;
  __natsConnection* connection_;
  std::shared_ptr<Shared> shared_;
};

}  // namespace tinyfaas::cluster
