// The seccomp table: each listed call really fails with its errno under the
// generated filter (checked in a forked child), the filter leaves ordinary
// calls alone, and the Docker profile says the same as the table.

#include "sandbox/seccomp_policy.hpp"

#include <gtest/gtest.h>
#include <linux/filter.h>
#include <sched.h>
#include <seccomp.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <set>

#include <nlohmann/json.hpp>

namespace tinyfaas::sandbox {
namespace {

// Loads `program` into a forked child, runs `probe` there and returns its
// exit code (the probe's verdict), or -1 when the child died otherwise.
template <class Probe>
int underFilter(const std::string& program, Probe probe) {
  const pid_t pid = fork();
  if (pid == 0) {
    sock_fprog fprog{static_cast<unsigned short>(program.size() / sizeof(sock_filter)),
                     reinterpret_cast<sock_filter*>(const_cast<char*>(program.data()))};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 || prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &fprog) != 0)
      _exit(100);
    _exit(probe());
  }
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// Calls that change nothing when they are not filtered either (all their
// arguments are invalid); vhangup takes none and is left out.
bool safeToCall(std::string_view name) { return name != "vhangup"; }

TEST(SeccompPolicy, EveryListedCallIsDeniedWithItsErrno) {
  auto program = seccompProgram();
  ASSERT_TRUE(program) << program.error().message;
  for (const auto& rule : deniedSyscalls()) {
    const std::string name(rule.name);
    const int number = seccomp_syscall_resolve_name(name.c_str());
    // Negative: not a call of this architecture (libseccomp's pseudo numbers).
    if (number < 0 || !safeToCall(name)) continue;
    long argument = -1;
    if (!rule.when.empty()) {
      const auto& test = rule.when.front();
      // A value the rule matches; for clone also CLONE_SIGHAND without
      // CLONE_VM, which the kernel refuses (EINVAL) should the filter not.
      argument = static_cast<long>(test.op == ArgumentTest::Op::maskedEqual ? test.value : test.value + 1);
      if (name == "clone") argument |= CLONE_SIGHAND;
    }
    const int verdict = underFilter(*program, [&] {
      errno = 0;
      const long r = syscall(number, argument, -1L, -1L, -1L, -1L, -1L);
      return r == -1 && errno == rule.error ? 0 : 1;
    });
    EXPECT_EQ(verdict, 0) << name << " (arg " << argument << ") is not refused with errno " << rule.error;
  }
}

TEST(SeccompPolicy, OrdinaryCallsStillWork) {
  auto program = seccompProgram();
  ASSERT_TRUE(program) << program.error().message;
  const int verdict = underFilter(*program, [] {
    if (getpid() <= 0) return 1;
    // Plain fork (clone without namespace flags) and the allowed personalities.
    const pid_t child = fork();
    if (child < 0) return 2;
    if (child == 0) _exit(0);
    waitpid(child, nullptr, 0);
    if (personality(PER_LINUX) == -1 || personality(PER_LINUX32) == -1 || personality(PER_LINUX) == -1) return 3;
    if (personality(READ_IMPLIES_EXEC) != -1) return 4;
    return 0;
  });
  EXPECT_EQ(verdict, 0);
}

TEST(SeccompPolicy, TheBriefsListIsInTheTable) {
  std::set<std::string_view> names;
  for (const auto& rule : deniedSyscalls()) names.insert(rule.name);
  // clang-format off
  for (std::string_view required :
       {"mount", "umount2", "pivot_root", "ptrace", "process_vm_readv", "process_vm_writev", "keyctl", "add_key",
        "request_key", "bpf", "perf_event_open", "userfaultfd", "kexec_load", "kexec_file_load", "init_module",
        "finit_module", "delete_module", "swapon", "swapoff", "reboot", "settimeofday", "clock_settime", "adjtimex",
        "acct", "quotactl", "name_to_handle_at", "open_by_handle_at", "setns", "unshare", "clone", "clone3",
        "personality", "io_uring_setup", "io_uring_enter", "io_uring_register", "fanotify_init", "lookup_dcookie",
        "iopl", "ioperm", "vhangup", "nfsservctl"}) {
    // clang-format on
    EXPECT_TRUE(names.count(required)) << required;
  }
}

TEST(SeccompPolicy, DockerProfileMatchesTheTable) {
  const auto profile = nlohmann::json::parse(dockerSeccompProfile(), nullptr, false);
  ASSERT_FALSE(profile.is_discarded());
  EXPECT_EQ(profile.at("defaultAction"), "SCMP_ACT_ALLOW");
  ASSERT_EQ(profile.at("architectures").size(), 1u);
  const auto& syscalls = profile.at("syscalls");
  const auto& table = deniedSyscalls();
  ASSERT_EQ(syscalls.size(), table.size());
  for (std::size_t i = 0; i < table.size(); ++i) {
    const auto& entry = syscalls[i];
    EXPECT_EQ(entry.at("names"), nlohmann::json::array({std::string(table[i].name)}));
    EXPECT_EQ(entry.at("action"), "SCMP_ACT_ERRNO");
    EXPECT_EQ(entry.at("errnoRet"), table[i].error);
    const auto args = entry.value("args", nlohmann::json::array());
    ASSERT_EQ(args.size(), table[i].when.size()) << table[i].name;
    for (std::size_t a = 0; a < args.size(); ++a) {
      const auto& test = table[i].when[a];
      EXPECT_EQ(args[a].at("index"), 0);
      EXPECT_EQ(args[a].at("value"), test.value);
      EXPECT_EQ(args[a].at("op"), test.op == ArgumentTest::Op::maskedEqual ? "SCMP_CMP_MASKED_EQ" : "SCMP_CMP_GT");
      if (test.op == ArgumentTest::Op::maskedEqual) {
        EXPECT_EQ(args[a].at("valueTwo"), test.value);
      }
    }
  }
}

}  // namespace
}  // namespace tinyfaas::sandbox
