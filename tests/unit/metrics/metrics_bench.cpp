// What metrics cost: a call through MeteredInvoker versus the same call
// straight to the invoker it wraps, and rendering /metrics for many
// functions. Built, not run by ctest:
//   build/tests/unit/metrics/tinyfaas_metrics_bench
#include <benchmark/benchmark.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>

#include "api/status_views.hpp"
#include "metrics/metered_invoker.hpp"
#include "proxy/router.hpp"

namespace tinyfaas::metrics {
namespace {

namespace asio = boost::asio;

// Answers at once, so what is measured is the wrapper.
class InstantInvoker final : public Invoker {
 public:
  asio::awaitable<CallResult> invoke(Invocation) override { co_return CallResult{}; }
  asio::awaitable<DetachedCall> invokeDetached(Invocation) override { co_return DetachedCall{}; }
  asio::awaitable<std::optional<AsyncCallRecord>> detachedCall(std::string) override { co_return std::nullopt; }
};

// Runs `calls` calls one after another in one coroutine on one loop.
void runCalls(Invoker& invoker, benchmark::State& state) {
  asio::io_context io;
  for (auto _ : state) {
    asio::co_spawn(
        io,
        [&invoker]() -> asio::awaitable<void> {
          for (int i = 0; i < 1000; ++i) {
            // Named, not a temporary in the co_await expression (GCC 12).
            Invocation call{"echo", "", {}};
            CallResult result = co_await invoker.invoke(std::move(call));
            benchmark::DoNotOptimize(result);
          }
        },
        asio::detached);
    io.run();
    io.restart();
  }
  state.SetItemsProcessed(state.iterations() * 1000);
}

void Direct(benchmark::State& state) {
  InstantInvoker inner;
  runCalls(inner, state);
}
BENCHMARK(Direct);

void Metered(benchmark::State& state) {
  asio::io_context io;
  Router router;
  router.publish("echo", {});
  InstantInvoker inner;
  CallMetrics metrics(io.get_executor(), router);
  MeteredInvoker metered(inner, metrics, Protocol::http);
  runCalls(metered, state);
}
BENCHMARK(Metered);

void RenderMetricsPage(benchmark::State& state) {
  std::vector<FunctionStatus> functions(static_cast<std::size_t>(state.range(0)));
  CallSnapshot calls;
  for (std::size_t i = 0; i < functions.size(); ++i) {
    functions[i].name = "function" + std::to_string(i);
    calls.functions[functions[i].name].of(Protocol::http).calls = i;
  }
  std::size_t bytes = 0;
  for (auto _ : state) {
    auto page = renderMetricsPage(functions, calls, {}, {});
    bytes = page.size();
    benchmark::DoNotOptimize(page);
  }
  state.counters["page_bytes"] = static_cast<double>(bytes);
}
BENCHMARK(RenderMetricsPage)->Arg(10)->Arg(100);

}  // namespace
}  // namespace tinyfaas::metrics

BENCHMARK_MAIN();
