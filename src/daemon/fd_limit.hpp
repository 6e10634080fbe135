#pragma once
// The daemon's file descriptor budget. Service managers start daemons with
// a soft RLIMIT_NOFILE of 1024 (for select()'s sake) and a far higher hard
// one; every connection, handler socket, pipe and open file takes one, so
// the daemon raises its soft limit and keeps its connection caps within it.

#include <sys/resource.h>

#include <cstddef>

namespace tinyfaas {

struct FdLimit {
  rlim_t before = 0;  // the soft limit at start
  rlim_t soft = 0;    // after raising it
  rlim_t hard = 0;
};

// Raises the soft limit to the hard one (keeping it where that fails).
FdLimit raiseFdLimit();

// `wanted` connections, or 1/`share` of the soft limit when that is less
// (at least 1): the rest stays for handlers, pipes, files and the other
// endpoints.
std::size_t connectionsWithin(std::size_t wanted, rlim_t soft, unsigned share);

}  // namespace tinyfaas
