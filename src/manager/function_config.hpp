#pragma once
// What a deployed function is made of, and whose it is.

#include <string>
#include <vector>

#include "backend/backend.hpp"
#include "core/runtime.hpp"
#include "manager/scaling_policy.hpp"

namespace tinyfaas {

struct FunctionConfig {
  std::string name;
  Runtime runtime = Runtime::nodejs;
  int threads = 1;
  ScalingPolicy scaling;  // dynamic: instances follow load instead of `threads`
  std::vector<std::string> env;  // "K=V"
  ResourceLimits limits;
  std::string owner;  // the tenant that deployed it ("" without tokens)
};

// Whose functions a management call may see and change (tenants, see
// manager/access_tokens). The default, for a daemon without tokens, sees all.
struct Scope {
  std::string tenant;  // owner of the functions it creates
  bool admin = true;   // sees and changes every function
  bool covers(const std::string& owner) const { return admin || owner == tenant; }
};

}  // namespace tinyfaas
