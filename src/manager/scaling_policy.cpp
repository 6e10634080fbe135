#include "manager/scaling_policy.hpp"

#include <algorithm>

namespace tinyfaas {

std::string_view toString(ScaleReason reason) {
  switch (reason) {
    case ScaleReason::fixed: return "fixed";
    case ScaleReason::min: return "min";
    case ScaleReason::load: return "load";
    case ScaleReason::idle: return "idle";
    case ScaleReason::budget: return "budget";
  }
  return "fixed";
}

std::vector<ScalingPlanner::Decision> ScalingPlanner::decide(const std::vector<Input>& functions,
                                                             Clock::time_point now) {
  const std::size_t n = functions.size();
  std::vector<Decision> out(n);
  // Below this a function's instances are not taken for others: its minimum
  // and what its load needs now.
  std::vector<int> keep(n);
  std::map<std::string, History, std::less<>> seen;

  for (std::size_t i = 0; i < n; ++i) {
    const Input& f = functions[i];
    if (!f.policy.dynamic) {
      out[i] = {f.fixedInstances, ScaleReason::fixed};
      keep[i] = f.fixedInstances;
      continue;
    }
    const ScalingPolicy& p = f.policy;
    History h{0, now, ScaleReason::min};
    if (auto it = history_.find(f.name); it != history_.end()) h = it->second;

    const auto target = static_cast<std::size_t>(std::max(p.targetInFlight, 1));
    const int needed = static_cast<int>(
        std::min<std::size_t>((f.inFlight + target - 1) / target, static_cast<std::size_t>(p.maxInstances)));
    int want = f.current;
    if (needed > f.current) {
      ++h.samplesAbove;
      if (h.samplesAbove >= kSamplesAboveTarget || f.current == 0) {
        want = needed;
        h.reason = ScaleReason::load;
      }
    } else {
      h.samplesAbove = 0;
    }
    if (needed >= f.current) {
      h.lastNeeded = now;
    } else if (now - h.lastNeeded >= p.idleTime) {
      want = needed;
      h.lastNeeded = now;  // the next step down waits a whole idle time again
      h.reason = ScaleReason::idle;
    }
    if (want < p.minInstances) {
      want = p.minInstances;
      if (h.reason != ScaleReason::idle) h.reason = ScaleReason::min;
    }
    want = std::min(want, p.maxInstances);
    out[i] = {want, h.reason};
    keep[i] = std::min(want, std::max(p.minInstances, needed));
    seen.emplace(f.name, h);
  }
  history_ = std::move(seen);  // forgets deleted functions

  if (budgetMb_ <= 0) return out;
  long long total = 0;
  for (std::size_t i = 0; i < n; ++i) total += static_cast<long long>(out[i].desired) * functions[i].memoryMb;
  auto growing = [&](std::size_t i) { return out[i].desired > functions[i].current; };

  // Takes instances from functions that are not growing, down to `floor`,
  // the one furthest above it first, while over budget and `room` lasts.
  auto reclaim = [&](const std::vector<int>& floor, long long room) {
    while (total > budgetMb_ && room > 0) {
      std::size_t victim = n;
      for (std::size_t i = 0; i < n; ++i) {
        if (growing(i) || out[i].desired <= floor[i]) continue;
        if (victim == n || out[i].desired - floor[i] > out[victim].desired - floor[victim]) victim = i;
      }
      if (victim == n) return;
      --out[victim].desired;
      out[victim].reason = ScaleReason::budget;
      total -= functions[victim].memoryMb;
      room -= functions[victim].memoryMb;
    }
  };
  // Room for growth comes first from instances others do not need now.
  reclaim(keep, total);
  // A function with calls but no instance gets its first one even from
  // instances others use (down to one): their calls queue a while, its
  // calls would fail.
  long long firstInstancesMb = 0;
  std::vector<int> one(n);
  for (std::size_t i = 0; i < n; ++i) {
    if (growing(i) && functions[i].current == 0) firstInstancesMb += functions[i].memoryMb;
    one[i] = functions[i].policy.dynamic ? std::max(functions[i].policy.minInstances, 1) : keep[i];
  }
  reclaim(one, firstInstancesMb);
  // Then growth is cut, from the function asking for most; a first
  // instance last.
  auto cutOne = [&](bool spareFirstInstances) {
    std::size_t cut = n;
    for (std::size_t i = 0; i < n; ++i) {
      if (!growing(i)) continue;
      if (spareFirstInstances && functions[i].current == 0 && out[i].desired == 1) continue;
      if (cut == n || out[i].desired - functions[i].current > out[cut].desired - functions[cut].current) cut = i;
    }
    if (cut == n) return false;
    --out[cut].desired;
    out[cut].reason = ScaleReason::budget;
    total -= functions[cut].memoryMb;
    return true;
  };
  while (total > budgetMb_ && (cutOne(true) || cutOne(false))) {
  }
  return out;
}

}  // namespace tinyfaas
