#include "frontend/grpc/grpc_frontend.hpp"

// The listener and the set of open connections; each connection serves
// itself (grpc_connection.cpp). The port is bound at create(), so a taken
// port is an error at once, as for the other endpoints.

#include <chrono>
#include <memory>
#include <set>
#include <utility>

#include <boost/asio/dispatch.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <spdlog/spdlog.h>

#include "core/async.hpp"
#include "frontend/listen_address.hpp"
#include "net/listen_socket.hpp"

namespace tinyfaas {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

// Shared by the frontend, its accept loop and the connections' coroutines,
// which may outlive the frontend. Data plane only.
struct Endpoint : std::enable_shared_from_this<Endpoint> {
  Endpoint(asio::any_io_executor dataPlane, Invoker& invoker, GrpcLimits limits, std::size_t maxConnections)
      : dataPlane(dataPlane),
        acceptor(dataPlane),
        tasks(dataPlane),
        calls(std::make_shared<GrpcCalls>(invoker, limits)),
        maxConnections(maxConnections) {}

  asio::any_io_executor dataPlane;
  tcp::acceptor acceptor;
  TaskGroup tasks;  // the accept loop and the connections
  std::shared_ptr<GrpcCalls> calls;
  std::size_t maxConnections;
  std::set<std::shared_ptr<GrpcConnection>> connections;
  bool stopped = false;

  asio::awaitable<void> serve(std::shared_ptr<GrpcConnection> connection) {
    co_await connection->serve();
    connections.erase(connection);
  }

  asio::awaitable<void> acceptLoop() {
    while (acceptor.is_open()) {
      auto [ec, socket] = co_await acceptor.async_accept(useTuple);
      if (ec) {
        if (ec == asio::error::operation_aborted) co_return;
        // Out of file descriptors and the like: back off instead of spinning.
        spdlog::warn("gRPC endpoint: accept failed: {}", ec.message());
        const bool slept = co_await tasks.sleep(std::chrono::milliseconds(50));
        if (!slept) co_return;
        continue;
      }
      if (connections.size() >= maxConnections) {
        // Closed at once: the client sees its connection end (UNAVAILABLE)
        // while the connections already open are served on.
        spdlog::debug("gRPC endpoint: {} connections open, closing a new one", connections.size());
        continue;
      }
      socket.set_option(tcp::no_delay(true), ec);
      auto connection = std::make_shared<GrpcConnection>(std::move(socket), calls);
      connections.insert(connection);
      tasks.spawn(serve(connection), shared_from_this());
    }
  }

  void closeListener() {
    boost::system::error_code ignored;
    acceptor.close(ignored);
    tasks.cancel();  // ends an accept backoff
  }

  void stop() {
    if (stopped) return;
    stopped = true;
    closeListener();
    calls->refusing = true;
    for (const auto& connection : connections) connection->close("tinyFaaS is shutting down");
  }
};

class NghttpGrpcFrontend final : public GrpcFrontend {
 public:
  NghttpGrpcFrontend(std::shared_ptr<Endpoint> endpoint, std::uint16_t port)
      : endpoint_(std::move(endpoint)), port_(port) {}
  ~NghttpGrpcFrontend() override {
    asio::dispatch(endpoint_->dataPlane, [endpoint = endpoint_] { endpoint->stop(); });
  }

  std::uint16_t port() const override { return port_; }

  void stopAccepting() override {
    endpoint_->closeListener();
    endpoint_->calls->refusing = true;
    for (const auto& connection : endpoint_->connections) connection->drain();
  }

  std::size_t callsInFlight() const override { return endpoint_->calls->unanswered; }

  void cutShort(std::string_view reason) override {
    for (const auto& connection : endpoint_->connections) connection->cutShort(reason);
  }

  void stop() override { endpoint_->stop(); }

 private:
  std::shared_ptr<Endpoint> endpoint_;
  std::uint16_t port_;
};

}  // namespace

boost::system::result<std::unique_ptr<GrpcFrontend>, std::string> GrpcFrontend::create(
    boost::asio::any_io_executor dataPlane, Invoker& invoker, GrpcOptions options) {
  auto listen = parseListenAddress("gRPC", options.address, options.port);
  if (!listen) return listen.error();
  const std::string& where = listen->where;

  GrpcLimits limits = options.limits;
  limits.maxInFlight = std::max<std::size_t>(limits.maxInFlight, 1);
  auto endpoint = std::make_shared<Endpoint>(dataPlane, invoker, limits, options.maxConnections);
  const tcp::endpoint local(listen->ip, options.port);
  boost::system::error_code ec = listenOn(endpoint->acceptor, local);
  if (ec) return "cannot bind gRPC on TCP " + where + ": " + ec.message();
  const std::uint16_t port = endpoint->acceptor.local_endpoint(ec).port();
  endpoint->tasks.spawn(endpoint->acceptLoop(), endpoint);
  return std::unique_ptr<GrpcFrontend>(std::make_unique<NghttpGrpcFrontend>(std::move(endpoint), port));
}

}  // namespace tinyfaas
