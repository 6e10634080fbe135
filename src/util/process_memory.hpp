#pragma once
// What a process and everything below it cost in memory, counted fairly:
// PSS (proportional set size) splits each shared page among the processes
// mapping it, so a runtime's shared libraries and the pages a sandbox
// helper shares with its child are not counted once per process.

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <optional>

namespace tinyfaas {

// Sum of Pss over `root` and its descendants, in bytes (/proc/PID/smaps_rollup
// and /proc/PID/task/TID/children). nullopt when `root` cannot be read
// (gone, or another user's without the right to read it); descendants that
// vanish while they are counted are left out. Blocks on /proc reads: a few
// tens of microseconds per process. At most `maxProcesses` are read: the
// tree is a function's, which may fork as many as its limits let it.
std::optional<std::uint64_t> processTreePssBytes(pid_t root, std::size_t maxProcesses = 256);

}  // namespace tinyfaas
