#include "frontend/coap/coap_frontend.hpp"

// The frontend is a handle on coap::Server (coap_server.hpp), which holds the
// state and does the work; how an exchange goes over the wire, and why, is
// told in answer_delivery.cpp.

#include <utility>

#include "frontend/coap/coap_server.hpp"

namespace tinyfaas {
namespace {

class CoapFrontendImpl final : public CoapFrontend {
 public:
  explicit CoapFrontendImpl(std::shared_ptr<coap::Server> server) : server_(std::move(server)) {}
  ~CoapFrontendImpl() override { server_->stop(); }

  std::uint16_t port() const override { return server_->port(); }
  void stop() override { server_->stop(); }
  void stopAccepting() override { server_->stopAccepting(); }
  std::size_t callsInFlight() const override { return server_->callsInFlight(); }
  bool delivering() const override { return server_->delivering(); }
  void cutShort(std::string_view reason) override { server_->cutShort(reason); }
  CoapStats stats() const override { return server_->stats(); }

 private:
  std::shared_ptr<coap::Server> server_;
};

}  // namespace

boost::system::result<std::unique_ptr<CoapFrontend>, std::string> CoapFrontend::create(
    boost::asio::any_io_executor executor, Invoker& invoker, CoapOptions options) {
  auto server = std::make_shared<coap::Server>(std::move(executor), invoker, std::move(options));
  if (auto started = server->start(); !started) return started.error();
  return std::unique_ptr<CoapFrontend>(std::make_unique<CoapFrontendImpl>(std::move(server)));
}

}  // namespace tinyfaas
