#pragma once
// The CallRunner every call goes through: routes a call to an instance and
// relays it.

#include <chrono>

#include <boost/asio/any_io_executor.hpp>

#include "core/invoker.hpp"
#include "proxy/router.hpp"

namespace tinyfaas {

struct ProxyOptions {
  // How long a call to a function with no instance up waits for one to
  // start (functions that scale from zero), before it is answered 503.
  std::chrono::milliseconds coldStartWait{std::chrono::seconds(10)};
};

// Lives on the data-plane thread with its Router.
class Proxy final : public CallRunner {
 public:
  Proxy(boost::asio::any_io_executor executor, Router& router, ProxyOptions options = {});

  boost::asio::awaitable<CallResult> invoke(Invocation invocation) override;

 private:
  boost::asio::any_io_executor executor_;
  Router& router_;
  ProxyOptions options_;
};

}  // namespace tinyfaas
