#include "frontend/grpc/grpc_frontend.hpp"

// The listener is ours, the server is the gRPC module's: the port is bound
// at start (so a taken port is an error at once, as for the other
// endpoints), and the module, with gRPC and protobuf, is loaded when the
// first connection arrives. Every accepted connection is then handed to the
// module's server, which serves it on gRPC's own threads.

#include <sys/stat.h>

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <utility>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/thread_pool.hpp>
#include <spdlog/spdlog.h>

#include "core/async.hpp"
#include "frontend/listen_address.hpp"
#include "grpc_api/grpc_module.hpp"
#include "net/listen_socket.hpp"
#include "util/async_sync.hpp"
#include "util/run_on.hpp"

namespace tinyfaas {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

// Shared by the frontend and its accept loop, which may outlive it by a turn
// of the loop (the loop's task keeps it).
struct Endpoint {
  Endpoint(asio::any_io_executor dataPlane, Invoker& invoker, GrpcServerOptions options, std::size_t maxConnections,
           const GrpcModule* module)
      : dataPlane(dataPlane),
        acceptor(dataPlane),
        tasks(dataPlane),
        invoker(invoker),
        options(options),
        maxConnections(maxConnections),
        module(module) {}

  asio::any_io_executor dataPlane;
  tcp::acceptor acceptor;  // touched on the data plane only
  TaskGroup tasks;         // the accept loop (data plane only)
  Invoker& invoker;
  GrpcServerOptions options;
  std::size_t maxConnections;
  const GrpcModule* module;  // null until loaded

  // Connections handed to gRPC, as descriptor and socket inode (data plane
  // only). gRPC closes them without telling us: one is still open while its
  // descriptor names the same socket (a reused number names another inode).
  std::vector<std::pair<int, ino_t>> adopted;

  std::size_t openConnections() {
    std::erase_if(adopted, [](const std::pair<int, ino_t>& connection) {
      struct stat status {};
      return ::fstat(connection.first, &status) != 0 || status.st_ino != connection.second;
    });
    return adopted.size();
  }

  // Set once by the accept loop; read by whoever drains or stops.
  mutable std::mutex mutex;
  std::unique_ptr<GrpcServer> server;
  bool stopped = false;

  GrpcServer* running() const {
    std::lock_guard lock(mutex);
    return server.get();
  }

  // Runs on gRPC's threads: the call itself runs on the data plane, where
  // the Invoker lives.
  CallDispatcher dispatcher() {
    return [this](Invocation invocation, std::function<void(CallResult)> done) {
      asio::co_spawn(
          dataPlane,
          [&invoker = invoker, invocation = std::move(invocation)]() mutable {
            return invoker.invoke(std::move(invocation));
          },
          [done = std::move(done)](std::exception_ptr error, CallResult result) {
            // The Invoker promises not to throw; if it does anyway, the
            // client still gets an answer.
            if (error) result = CallResult{CallStatus::functionError, "internal error"};
            done(std::move(result));
          });
    };
  }

  // Loads the module if need be and starts its server. Blocks for as long
  // as loading takes.
  GrpcServer* startServer() {
    if (!module) {
      const auto started = std::chrono::steady_clock::now();
      auto loaded = loadModuleApi<GrpcModule>("grpc");
      if (!loaded) {
        spdlog::error("gRPC endpoint: {}", loaded.error());
        return nullptr;
      }
      module = *loaded;
      const auto took =
          std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started);
      spdlog::info("gRPC endpoint: first connection, gRPC module loaded in {} ms", took.count());
    }
    auto created = module->createServer(dispatcher(), options);
    if (!created) {
      spdlog::error("gRPC endpoint: {}", created.error());
      return nullptr;
    }
    std::lock_guard lock(mutex);
    if (stopped) return nullptr;  // stop() ran meanwhile; `created` shuts down as it goes
    server = std::move(*created);
    return server.get();
  }
};

// The module's server, loaded and started on the first connection.
asio::awaitable<GrpcServer*> serverForConnection(Endpoint& endpoint) {
  if (GrpcServer* existing = endpoint.running()) co_return existing;
  // Loading gRPC's libraries takes tens of milliseconds: on a thread of its
  // own, so that HTTP and CoAP calls on the data plane do not wait for it.
  asio::thread_pool loader(1);
  auto start = [&endpoint] { return endpoint.startServer(); };
  co_return co_await runOn(loader.get_executor(), start);
}

asio::awaitable<void> acceptLoop(Endpoint& endpoint) {
  while (endpoint.acceptor.is_open()) {
    auto [ec, socket] = co_await endpoint.acceptor.async_accept(useTuple);
    if (ec) {
      if (ec == asio::error::operation_aborted) co_return;
      // Out of file descriptors and the like: back off instead of spinning.
      spdlog::warn("gRPC endpoint: accept failed: {}", ec.message());
      const bool slept = co_await endpoint.tasks.sleep(std::chrono::milliseconds(50));
      if (!slept) co_return;
      continue;
    }
    if (endpoint.openConnections() >= endpoint.maxConnections) {
      // Closed at once: the client sees its connection end (UNAVAILABLE)
      // while the connections already open are served on.
      spdlog::debug("gRPC endpoint: {} connections open, closing a new one", endpoint.adopted.size());
      continue;
    }
    GrpcServer* server = co_await serverForConnection(endpoint);
    if (!server) continue;  // the socket closes: the client sees its connection end
    socket.set_option(tcp::no_delay(true), ec);
    socket.non_blocking(true, ec);
    struct stat status {};
    if (::fstat(socket.native_handle(), &status) != 0) continue;
    const int fd = socket.release();
    endpoint.adopted.emplace_back(fd, status.st_ino);
    server->adopt(fd);
  }
}

class ModuleGrpcFrontend final : public GrpcFrontend {
 public:
  ModuleGrpcFrontend(std::shared_ptr<Endpoint> endpoint, std::uint16_t port)
      : endpoint_(std::move(endpoint)), port_(port) {}
  ~ModuleGrpcFrontend() override { stop(); }

  std::uint16_t port() const override { return port_; }

  void stopAccepting() override {
    closeListener();
    if (GrpcServer* server = endpoint_->running()) server->stopAccepting();
  }

  std::size_t callsInFlight() const override {
    GrpcServer* server = endpoint_->running();
    return server ? server->callsInFlight() : 0;
  }

  void cutShort(std::string_view reason) override {
    if (GrpcServer* server = endpoint_->running()) server->cutShort(reason);
  }

  void stop() override {
    closeListener();
    std::unique_ptr<GrpcServer> server;
    {
      std::lock_guard lock(endpoint_->mutex);
      endpoint_->stopped = true;
      server = std::move(endpoint_->server);
    }
    if (server) server->stop();
  }

 private:
  void closeListener() {
    asio::dispatch(endpoint_->dataPlane, [endpoint = endpoint_] {
      boost::system::error_code ignored;
      endpoint->acceptor.close(ignored);
      endpoint->tasks.cancel();  // ends an accept backoff
    });
  }

  std::shared_ptr<Endpoint> endpoint_;
  std::uint16_t port_;
};

}  // namespace

boost::system::result<std::unique_ptr<GrpcFrontend>, std::string> GrpcFrontend::create(
    boost::asio::any_io_executor dataPlane, Invoker& invoker, GrpcOptions options) {
  auto listen = parseListenAddress("gRPC", options.address, options.port);
  if (!listen) return listen.error();
  const std::string& where = listen->where;

  GrpcServerOptions serverOptions;
  serverOptions.maxMessageBytes = options.maxMessageBytes;
  serverOptions.maxPayloadBytes = options.maxPayloadBytes;
  serverOptions.maxInFlight = options.maxInFlight;
  serverOptions.maxInFlightBytes = options.maxInFlightBytes;
  auto endpoint = std::make_shared<Endpoint>(dataPlane, invoker, serverOptions, options.maxConnections, options.module);
  const tcp::endpoint local(listen->ip, options.port);
  boost::system::error_code ec = listenOn(endpoint->acceptor, local);
  if (ec) return "cannot bind gRPC on TCP " + where + ": " + ec.message();
  const std::uint16_t port = endpoint->acceptor.local_endpoint(ec).port();
  endpoint->tasks.spawn(acceptLoop(*endpoint), endpoint);
  return std::unique_ptr<GrpcFrontend>(std::make_unique<ModuleGrpcFrontend>(std::move(endpoint), port));
}

}  // namespace tinyfaas
