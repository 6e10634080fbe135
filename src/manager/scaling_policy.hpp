#pragma once
// How many instances each function should run: a pure decision from sampled
// in-flight calls, the functions' scaling fields and the node's memory
// budget, with the clock passed in (unit-tested with a fake one). The
// function manager samples, asks, and starts or drains instances.

#include <chrono>
#include <cstddef>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace tinyfaas {

// From the optional upload fields min_instances, max_instances,
// target_in_flight and idle_seconds. Without them a function runs its
// `threads` instances, always (dynamic == false).
struct ScalingPolicy {
  bool dynamic = false;
  int minInstances = 1;
  int maxInstances = 1;
  int targetInFlight = 8;  // calls per instance before another one starts
  std::chrono::milliseconds idleTime{std::chrono::seconds(30)};
};

// Why a function runs the instances it runs (GET /functions "reason").
enum class ScaleReason { fixed, min, load, idle, budget };
std::string_view toString(ScaleReason reason);

class ScalingPlanner {
 public:
  using Clock = std::chrono::steady_clock;

  // One function at one sample.
  struct Input {
    std::string name;
    ScalingPolicy policy;
    int fixedInstances = 1;    // `threads`, for functions without a policy
    int current = 0;           // instances starting or serving (not draining)
    int memoryMb = 0;          // per instance
    std::size_t inFlight = 0;  // calls on its instances plus calls held for one
  };
  struct Decision {
    int desired = 0;
    ScaleReason reason = ScaleReason::fixed;
  };

  // Samples in a row above target before scaling up: one busy instant is
  // not load. Calls held with no instance at all start one at once.
  static constexpr int kSamplesAboveTarget = 2;

  // memoryBudgetMb 0: no budget.
  explicit ScalingPlanner(int memoryBudgetMb) : budgetMb_(memoryBudgetMb) {}

  // One decision per input, in order. The desired counts of all functions
  // together fit the budget, except what their minimums and fixed counts
  // already take (deploy refuses those beyond it).
  std::vector<Decision> decide(const std::vector<Input>& functions, Clock::time_point now);

 private:
  struct History {
    int samplesAbove = 0;
    Clock::time_point lastNeeded;  // last sample whose load needed all current instances
    ScaleReason reason = ScaleReason::min;
  };

  int budgetMb_;
  std::map<std::string, History, std::less<>> history_;
};

}  // namespace tinyfaas
