#pragma once
// One closed-loop load run: N clients, each issuing M calls one after
// another, spread as coroutines over one asio io_context per thread.

#include "stats.hpp"
#include "target.hpp"

#include <boost/system/result.hpp>

#include <chrono>
#include <cstddef>
#include <string>
#include <vector>

namespace tinyfaas::bench {

struct RunOptions {
  Target target;
  unsigned clients = 1;
  unsigned callsPerClient = 500;
  unsigned threads = 1;
  std::chrono::milliseconds timeout{1000};
  // No call starts after this; calls in flight still get their timeout.
  std::chrono::milliseconds maxDuration{std::chrono::seconds(300)};
  std::string payload;
  bool get = false;  // GET instead of POST (http, coap)
  bool coapNonConfirmable = false;
  unsigned grpcChannels = 0;  // HTTP/2 connections, at least one per thread; 0: one per thread
  std::size_t maxResponseBytes = 16 * 1024 * 1024;
};

struct RunResult {
  std::vector<Sample> samples;  // client-major, in call order
  double wallSeconds = 0;
  double cpuUserSeconds = 0;  // this process, all threads
  double cpuSystemSeconds = 0;
  bool stoppedByMaxDuration = false;
  std::string firstError;  // the first transport error seen, for the report; empty if none
};

// Fails only when the run cannot start (unresolvable host, bad options);
// everything that happens to individual calls is in the samples.
boost::system::result<RunResult, std::string> runLoad(const RunOptions& options);

}  // namespace tinyfaas::bench
