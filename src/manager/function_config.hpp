#pragma once
// What a deployed function is made of, and whose it is.

#include <chrono>
#include <string>
#include <vector>

#include "backend/backend.hpp"
#include "core/mqtt_trigger.hpp"
#include "core/retry_policy.hpp"
#include "core/runtime.hpp"
#include "manager/scaling_policy.hpp"

namespace tinyfaas {

// How the data plane treats calls to the function (proxy/upstream).
struct CallLimits {
  // 0: the daemon's --call-timeout. Time spent waiting in the queue counts.
  std::chrono::milliseconds timeout{0};
  // Calls one instance gets at once; more wait in its queue, in order.
  int concurrency = 128;
  // Calls waiting per instance; beyond them a call is refused at once
  // (overloaded) instead of piling up.
  int queue = 1024;
  // Asynchronous calls (upload field "async"): how often they are tried.
  RetryPolicy async;
};

struct FunctionConfig {
  std::string name;
  Runtime runtime = Runtime::nodejs;
  int threads = 1;
  ScalingPolicy scaling;         // dynamic: instances follow load instead of `threads`
  std::vector<std::string> env;  // "K=V"
  ResourceLimits limits;
  CallLimits calls;
  // Upload field "triggers".
  std::vector<MqttTrigger> triggers;
  std::string owner;  // the tenant that deployed it ("" without tokens)
};

// Whose functions a management call may see and change (tenants, see
// api/access_tokens). The default, for a daemon without tokens, sees all.
struct Scope {
  std::string tenant;  // owner of the functions it creates
  bool admin = true;   // sees and changes every function
  bool covers(const std::string& owner) const { return admin || owner == tenant; }
};

}  // namespace tinyfaas
