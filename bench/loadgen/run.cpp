#include "run.hpp"

#include "client_job.hpp"
#include "coap_load.hpp"
#include "grpc_load.hpp"
#include "http_load.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ip/udp.hpp>
#include <boost/beast/http/field.hpp>
#include <boost/beast/version.hpp>
#include <sys/resource.h>

#include <atomic>
#include <exception>
#include <memory>
#include <optional>
#include <thread>

namespace tinyfaas::bench {
namespace asio = boost::asio;
namespace http = boost::beast::http;

namespace {

double seconds(const timeval& tv) { return static_cast<double>(tv.tv_sec) + static_cast<double>(tv.tv_usec) / 1e6; }

// IPv4 first: "localhost" resolves to ::1 before 127.0.0.1 on most hosts,
// while servers here (tinyFaaS' endpoints, the Node baselines) listen on
// IPv4 addresses.
template <class Protocol>
boost::system::result<typename Protocol::endpoint, std::string> resolve(const Target& target) {
  asio::io_context io;
  typename Protocol::resolver resolver(io);
  boost::system::error_code ec;
  const auto results = resolver.resolve(target.host, std::to_string(target.port), ec);
  if (ec || results.empty()) return "cannot resolve " + target.host + ": " + (ec ? ec.message() : "no address");
  for (const auto& entry : results) {
    if (entry.endpoint().address().is_v4()) return entry.endpoint();
  }
  return results.begin()->endpoint();
}

std::string hostHeader(const Target& target) {
  std::string host = target.host.find(':') != std::string::npos ? "[" + target.host + "]" : target.host;
  return host + ":" + std::to_string(target.port);
}

}  // namespace

boost::system::result<RunResult, std::string> runLoad(const RunOptions& options) {
  if (options.clients == 0 || options.callsPerClient == 0) return std::string("clients and calls must be at least 1");
  const unsigned threads = std::max(1u, std::min(options.threads, options.clients));
  const Target& target = options.target;

  // Plans are built before the clock starts and only read during the run.
  std::optional<HttpPlan> httpPlan;
  std::optional<asio::ip::tcp::endpoint> tcpEndpoint;
  std::optional<CoapPlan> coapPlan;
  std::unique_ptr<GrpcPlan> grpcPlan;
  switch (target.protocol) {
    case Protocol::http:
    case Protocol::httpUnix: {
      httpPlan.emplace();
      auto& request = httpPlan->request;
      request.method(options.get ? http::verb::get : http::verb::post);
      request.target(target.path);
      request.version(11);
      request.set(http::field::host, target.protocol == Protocol::http ? hostHeader(target) : "localhost");
      request.set(http::field::user_agent, "tinyfaas-bench");
      if (!options.get || !options.payload.empty()) {
        request.set(http::field::content_type, "text/plain");
        request.body() = options.payload;
      }
      request.keep_alive(true);
      request.prepare_payload();
      httpPlan->maxResponseBytes = options.maxResponseBytes;
      if (target.protocol == Protocol::http) {
        auto endpoint = resolve<asio::ip::tcp>(target);
        if (!endpoint) return endpoint.error();
        tcpEndpoint = *endpoint;
      }
      break;
    }
    case Protocol::coap: {
      initCoapPdu();
      coapPlan.emplace();
      auto endpoint = resolve<asio::ip::udp>(target);
      if (!endpoint) return endpoint.error();
      coapPlan->endpoint = *endpoint;
      coapPlan->request.type = options.coapNonConfirmable ? CoapType::non : CoapType::con;
      coapPlan->request.code = options.get ? 1 : 2;
      splitCoapPath(target.path, coapPlan->request.uriPath, coapPlan->request.uriQuery);
      coapPlan->request.payload = options.payload;
      if (!encodeCoapRequest(coapPlan->request, 0, {})) {
        return std::string("the CoAP request cannot be encoded (payload over 64 KiB?)");
      }
      break;
    }
    case Protocol::grpc: {
      auto endpoint = resolve<asio::ip::tcp>(target);
      if (!endpoint) return endpoint.error();
      grpcPlan = std::make_unique<GrpcPlan>(*endpoint, hostHeader(target), target.path, options.payload,
                                            options.grpcChannels == 0 ? threads : options.grpcChannels, threads);
      break;
    }
  }

  std::vector<std::unique_ptr<asio::io_context>> loops;
  for (unsigned i = 0; i < threads; ++i) {
    // Hint 1: each loop is run by exactly one thread, so asio may skip locking.
    loops.push_back(std::make_unique<asio::io_context>(1));
  }

  std::vector<ClientJob> jobs(options.clients);
  std::atomic<unsigned> remaining{options.clients};
  std::atomic<bool> anyException{false};
  std::string exceptionText;

  rusage before{};
  getrusage(RUSAGE_SELF, &before);
  const auto runStart = Clock::now();
  for (unsigned i = 0; i < options.clients; ++i) {
    ClientJob& job = jobs[i];
    job.id = i;
    job.calls = options.callsPerClient;
    job.timeout = options.timeout;
    job.runStart = runStart;
    job.stopIssuing = runStart + options.maxDuration;
    job.samples.reserve(options.callsPerClient);
    const unsigned loopIndex = i % threads;
    auto& loop = *loops[loopIndex];
    auto onDone = [&](std::exception_ptr error) {
      if (error && !anyException.exchange(true)) {
        try {
          std::rethrow_exception(error);
        } catch (const std::exception& e) {
          exceptionText = e.what();
        } catch (...) {
          exceptionText = "unknown exception";
        }
      }
      if (remaining.fetch_sub(1) == 1) {
        for (auto& l : loops) l->stop();
      }
    };
    switch (target.protocol) {
      case Protocol::http: asio::co_spawn(loop, runHttpClient(job, *httpPlan, *tcpEndpoint), onDone); break;
      case Protocol::httpUnix:
        asio::co_spawn(loop, runHttpClient(job, *httpPlan, asio::local::stream_protocol::endpoint(target.socketPath)),
                       onDone);
        break;
      case Protocol::coap: asio::co_spawn(loop, runCoapClient(job, *coapPlan), onDone); break;
      case Protocol::grpc: asio::co_spawn(loop, runGrpcClient(job, *grpcPlan, loopIndex), onDone); break;
    }
  }

  std::vector<std::thread> workers;
  for (unsigned i = 0; i < threads; ++i) {
    workers.emplace_back([&loop = *loops[i]] { loop.run(); });
  }
  for (auto& w : workers) w.join();
  const auto runEnd = Clock::now();
  rusage after{};
  getrusage(RUSAGE_SELF, &after);

  RunResult result;
  result.wallSeconds = std::chrono::duration<double>(runEnd - runStart).count();
  result.cpuUserSeconds = seconds(after.ru_utime) - seconds(before.ru_utime);
  result.cpuSystemSeconds = seconds(after.ru_stime) - seconds(before.ru_stime);
  std::size_t total = 0;
  for (const auto& job : jobs) total += job.samples.size();
  result.samples.reserve(total);
  for (auto& job : jobs) {
    if (job.samples.size() < job.calls) result.stoppedByMaxDuration = true;
    result.samples.insert(result.samples.end(), job.samples.begin(), job.samples.end());
    if (result.firstError.empty()) result.firstError = job.firstError;
  }
  if (anyException) return "a client failed: " + exceptionText;
  return result;
}

}  // namespace tinyfaas::bench
