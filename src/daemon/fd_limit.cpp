#include "daemon/fd_limit.hpp"

#include <algorithm>

namespace tinyfaas {

FdLimit raiseFdLimit() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return {};
  FdLimit out{limit.rlim_cur, limit.rlim_cur, limit.rlim_max};
  if (limit.rlim_cur < limit.rlim_max) {
    rlimit raised{limit.rlim_max, limit.rlim_max};
    if (setrlimit(RLIMIT_NOFILE, &raised) == 0) out.soft = limit.rlim_max;
  }
  return out;
}

std::size_t connectionsWithin(std::size_t wanted, rlim_t soft, unsigned share) {
  if (soft == RLIM_INFINITY) return wanted;
  return std::max<std::size_t>(1, std::min<std::size_t>(wanted, soft / share));
}

}  // namespace tinyfaas
