// tinyfaas-bench: a closed-loop load generator (the thesis' evaluation
// client, chapter 4) for HTTP, CoAP and gRPC targets.

#include "report.hpp"
#include "run.hpp"
#include "target.hpp"

#include <CLI/CLI.hpp>
#include <sys/resource.h>

#include <fstream>
#include <iostream>
#include <iterator>
#include <thread>

namespace {

// 1024 UDP sockets or TCP connections need more descriptors than the usual
// soft limit of 1024: take what the hard limit allows.
void raiseDescriptorLimit() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    setrlimit(RLIMIT_NOFILE, &limit);
  }
}

}  // namespace

int main(int argc, char** argv) {
  using namespace tinyfaas::bench;
  CLI::App app{
      "Closed-loop load generator: N clients, each issuing M calls one after another to one URL, as in the\n"
      "tinyFaaS thesis' evaluation. A call counts as failed without an answer within --timeout-ms or with a\n"
      "non-success status (HTTP outside 2xx, CoAP outside 2.xx, gRPC not OK).\n\n"
      "URL forms:\n"
      "  http://HOST[:PORT]/PATH            HTTP/1.1, one keep-alive connection per client\n"
      "  coap://HOST[:PORT]/PATH            CoAP over UDP (default port 5683), one socket per client, no "
      "retransmission\n"
      "  grpc://HOST[:PORT]/FUNCTION        tinyFaaS' TinyFaaS.Request over HTTP/2 without TLS (default port 9000)\n"
      "  http+unix:///PATH/TO.sock:/PATH    HTTP/1.1 over a Unix socket (e.g. a function handler's)\n\n"
      "Only loopback targets (127.0.0.0/8, ::1, localhost) or Unix sockets unless --allow-remote.\n"
      "Output: a short report, or one JSON line with --json; every call with --samples FILE.\n"
      "Exit status: 0 when the run completed (whatever its success rate), 1 when it could not run, 2 on bad usage.",
      "tinyfaas-bench"};
  app.get_formatter()->column_width(34);

  std::string url;
  unsigned clients = 1;
  unsigned calls = 500;
  unsigned threads = std::max(1u, std::thread::hardware_concurrency());
  unsigned timeoutMs = 1000;
  double maxSeconds = 300;
  std::string data;
  std::string dataFile;
  std::string method = "POST";
  bool non = false;
  unsigned grpcChannels = 0;
  std::string samplesPath;
  bool json = false;
  bool allowRemote = false;

  app.add_option("url", url, "Target URL (see above)")->required();
  app.add_option("-c,--clients", clients, "Concurrent clients (the thesis used 1, 4, 16, 64, 256, 1024)")
      ->capture_default_str()
      ->check(CLI::Range(1u, 100000u));
  app.add_option("-n,--calls", calls, "Calls per client, issued one after another")
      ->capture_default_str()
      ->check(CLI::Range(1u, 10000000u));
  app.add_option("-t,--threads", threads, "Event loops (one thread each); clients are spread over them")
      ->capture_default_str()
      ->check(CLI::Range(1u, 256u));
  app.add_option("--timeout-ms", timeoutMs, "A call without an answer after this long fails")
      ->capture_default_str()
      ->check(CLI::Range(1u, 600000u));
  app.add_option("--max-seconds", maxSeconds,
                 "No call starts after this long (calls in flight still get their timeout)")
      ->capture_default_str()
      ->check(CLI::Range(0.001, 86400.0));
  auto* dataOption = app.add_option("-d,--data", data, "Request payload (default: empty)");
  app.add_option("--data-file", dataFile, "Read the request payload from this file")
      ->check(CLI::ExistingFile)
      ->excludes(dataOption);
  app.add_option("-m,--method", method, "POST or GET (http, coap; ignored for grpc)")
      ->capture_default_str()
      ->transform(CLI::IsMember({"POST", "GET"}, CLI::ignore_case));
  app.add_flag("--non", non, "CoAP: non-confirmable requests (default confirmable)");
  app.add_option(
         "--grpc-channels", grpcChannels,
         "gRPC: HTTP/2 connections the clients share, spread over the threads (at least one each); 0 = one per thread")
      ->capture_default_str();
  app.add_option("--samples", samplesPath, "Write every call as CSV: client,seq,start_us,latency_us,ok");
  app.add_flag("--json", json, "Print one JSON line instead of the text report");
  app.add_flag("--allow-remote", allowRemote, "Allow targets that are not loopback");
  CLI11_PARSE(app, argc, argv);

  auto target = parseTarget(url);
  if (!target) {
    std::cerr << "tinyfaas-bench: " << target.error() << "\n";
    return 2;
  }
  if (auto allowed = checkTargetAllowed(*target, allowRemote); !allowed) {
    std::cerr << "tinyfaas-bench: " << allowed.error() << "\n";
    return 2;
  }

  RunOptions options;
  options.target = *target;
  options.clients = clients;
  options.callsPerClient = calls;
  options.threads = threads;
  options.timeout = std::chrono::milliseconds(timeoutMs);
  options.maxDuration = std::chrono::milliseconds(static_cast<long long>(maxSeconds * 1000));
  options.get = method == "GET" || method == "get";
  options.coapNonConfirmable = non;
  options.grpcChannels = grpcChannels;
  if (!dataFile.empty()) {
    std::ifstream in(dataFile, std::ios::binary);
    data.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    if (!in.good() && !in.eof()) {
      std::cerr << "tinyfaas-bench: cannot read " << dataFile << "\n";
      return 1;
    }
  }
  options.payload = std::move(data);

  raiseDescriptorLimit();
  auto result = runLoad(options);
  if (!result) {
    std::cerr << "tinyfaas-bench: " << result.error() << "\n";
    return 1;
  }
  if (!samplesPath.empty()) {
    std::ofstream out(samplesPath);
    writeSamplesCsv(out, *result);
    if (!out.good()) {
      std::cerr << "tinyfaas-bench: cannot write " << samplesPath << "\n";
      return 1;
    }
  }
  std::cout << (json ? jsonSummary(options, *result) + "\n" : textReport(options, *result)) << std::flush;
  return 0;
}
