#pragma once
// The system calls a function (handler, per-call process, dependency
// install) may not make, as one table that drives both the libseccomp
// filter of the process backend and the Docker seccomp profile, so the two
// backends refuse the same things. Docker's default profile is the
// reference; this is a deny list on top of an allow-by-default filter
// (namespaces, capabilities and no_new_privs do the rest).

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <boost/system/result.hpp>

#include "core/failure.hpp"

namespace tinyfaas::sandbox {

// One condition on the first argument, as libseccomp and Docker spell it.
struct ArgumentTest {
  enum class Op { maskedEqual, greaterThan };
  Op op = Op::maskedEqual;
  std::uint64_t value = 0;  // maskedEqual: (arg0 & value) == value; greaterThan: arg0 > value
};

struct DeniedSyscall {
  std::string_view name;
  int error = 1;  // errno returned (EPERM; ENOSYS where libc must fall back)
  // Denied only when this holds; every call when empty. Several rules with
  // the same name deny when any of them holds.
  std::vector<ArgumentTest> when;
};

// The table, in order.
const std::vector<DeniedSyscall>& deniedSyscalls();

// The filter as a classic BPF program for the native architecture (what
// bwrap's --seccomp reads): the listed calls fail with their errno, calls
// of any other architecture (x32, i386 through int 0x80) kill the process.
boost::system::result<std::string, Failure> seccompProgram();

// The same table as a Docker seccomp profile (JSON), for
// HostConfig.SecurityOpt "seccomp=<json>".
std::string dockerSeccompProfile();

}  // namespace tinyfaas::sandbox
