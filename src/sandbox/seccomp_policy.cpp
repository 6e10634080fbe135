#include "sandbox/seccomp_policy.hpp"

#include <sched.h>
#include <seccomp.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>

#include <nlohmann/json.hpp>

namespace tinyfaas::sandbox {

namespace {

constexpr int kEperm = EPERM;
constexpr int kEnosys = ENOSYS;

// One rule per namespace flag: libseccomp cannot test one argument twice
// in a rule, and a call is denied when any rule for it matches.
std::vector<DeniedSyscall> namespaceFlagRules(std::string_view name) {
  std::vector<DeniedSyscall> rules;
  for (std::uint64_t flag : {CLONE_NEWNS, CLONE_NEWUTS, CLONE_NEWIPC, CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET,
                             CLONE_NEWCGROUP, static_cast<int>(CLONE_NEWTIME)}) {
    rules.push_back({name, kEperm, {{ArgumentTest::Op::maskedEqual, flag}}});
  }
  return rules;
}

// personality(): Docker allows 0 (PER_LINUX), 8 (PER_LINUX32), 0x20000
// (UNAME26), 0x20008 and the query 0xffffffff. A deny list cannot say "not
// one of these" in one rule, so: any value above 0x20008 (the query too,
// which nothing we run needs), and any set bit below 0x20000 except 8.
std::vector<DeniedSyscall> personalityRules() {
  std::vector<DeniedSyscall> rules = {{"personality", kEperm, {{ArgumentTest::Op::greaterThan, 0x20008}}}};
  for (int bit = 0; bit < 17; ++bit) {
    if (bit == 3) continue;
    rules.push_back({"personality", kEperm, {{ArgumentTest::Op::maskedEqual, std::uint64_t{1} << bit}}});
  }
  return rules;
}

std::vector<DeniedSyscall> buildTable() {
  std::vector<DeniedSyscall> table;
  // Whole calls: file system and namespace changes, other processes'
  // memory, kernel keyrings, kernel programs and modules, the machine's
  // clock, swap, power, accounting and quotas, raw handles to files, I/O
  // ports, and interfaces that have been a steady source of kernel bugs
  // (io_uring, userfaultfd, perf).
  // clang-format off
  for (std::string_view name :
       {"mount", "umount", "umount2", "pivot_root", "chroot", "move_mount", "open_tree", "fsopen", "fsconfig",
        "fsmount", "fspick", "mount_setattr", "ptrace", "process_vm_readv", "process_vm_writev", "process_madvise",
        "pidfd_getfd", "kcmp", "keyctl", "add_key", "request_key", "bpf", "perf_event_open", "userfaultfd",
        "kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module", "create_module",
        "get_kernel_syms", "query_module", "swapon", "swapoff", "reboot", "settimeofday", "clock_settime",
        "clock_adjtime", "adjtimex", "stime", "acct", "quotactl", "quotactl_fd", "name_to_handle_at",
        "open_by_handle_at", "setns", "unshare", "io_uring_setup", "io_uring_enter", "io_uring_register",
        "fanotify_init", "lookup_dcookie", "iopl", "ioperm", "vhangup", "nfsservctl", "syslog", "uselib",
        "_sysctl", "sysfs", "ustat", "vm86", "vm86old"}) {
    // clang-format on
    table.push_back({name, kEperm, {}});
  }
  // clone3 passes its flags in memory a filter cannot read: ENOSYS makes
  // glibc fall back to clone, whose flags can be checked (as Docker does).
  table.push_back({"clone3", kEnosys, {}});
  for (auto& rule : namespaceFlagRules("clone")) table.push_back(std::move(rule));
  for (auto& rule : personalityRules()) table.push_back(std::move(rule));
  return table;
}

struct FilterDeleter {
  void operator()(void* ctx) const { seccomp_release(ctx); }
};

std::string dockerArchitecture() {
  switch (seccomp_arch_native()) {
    case SCMP_ARCH_X86_64: return "SCMP_ARCH_X86_64";
    case SCMP_ARCH_AARCH64: return "SCMP_ARCH_AARCH64";
    case SCMP_ARCH_ARM: return "SCMP_ARCH_ARM";
    case SCMP_ARCH_RISCV64: return "SCMP_ARCH_RISCV64";
    case SCMP_ARCH_PPC64LE: return "SCMP_ARCH_PPC64LE";
    case SCMP_ARCH_S390X: return "SCMP_ARCH_S390X";
    default: return "SCMP_ARCH_NATIVE";
  }
}

}  // namespace

const std::vector<DeniedSyscall>& deniedSyscalls() {
  static const std::vector<DeniedSyscall> table = buildTable();
  return table;
}

boost::system::result<std::string, Failure> seccompProgram() {
  std::unique_ptr<void, FilterDeleter> filter(seccomp_init(SCMP_ACT_ALLOW));
  if (!filter) return Failure{"seccomp_init failed"};
  // Only the native architecture: a call through another ABI kills.
  seccomp_attr_set(filter.get(), SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS);
  for (const auto& rule : deniedSyscalls()) {
    const std::string name(rule.name);
    const int number = seccomp_syscall_resolve_name(name.c_str());
    if (number == __NR_SCMP_ERROR) continue;  // not a call of this architecture
    std::vector<scmp_arg_cmp> tests;
    for (const auto& test : rule.when) {
      tests.push_back(test.op == ArgumentTest::Op::maskedEqual
                          ? scmp_arg_cmp{0, SCMP_CMP_MASKED_EQ, test.value, test.value}
                          : scmp_arg_cmp{0, SCMP_CMP_GT, test.value, 0});
    }
    const int added = seccomp_rule_add_array(filter.get(), SCMP_ACT_ERRNO(static_cast<std::uint16_t>(rule.error)),
                                             number, static_cast<unsigned>(tests.size()), tests.data());
    // -EDOM/-EOPNOTSUPP: a pseudo-call libseccomp cannot place on this arch.
    if (added != 0 && added != -EDOM && added != -EOPNOTSUPP)
      return Failure{"seccomp rule for " + name + ": " + std::strerror(-added)};
  }
  const int fd = memfd_create("tinyfaas-seccomp", MFD_CLOEXEC);
  if (fd < 0) return Failure{std::string("memfd_create: ") + std::strerror(errno)};
  std::string program;
  if (const int exported = seccomp_export_bpf(filter.get(), fd); exported != 0) {
    close(fd);
    return Failure{std::string("seccomp_export_bpf: ") + std::strerror(-exported)};
  }
  const off_t size = lseek(fd, 0, SEEK_END);
  program.resize(static_cast<std::size_t>(size > 0 ? size : 0));
  const bool read = pread(fd, program.data(), program.size(), 0) == static_cast<ssize_t>(program.size());
  close(fd);
  if (!read || program.empty()) return Failure{"cannot read the exported seccomp program"};
  return {boost::system::in_place_value, std::move(program)};
}

std::string dockerSeccompProfile() {
  nlohmann::json syscalls = nlohmann::json::array();
  for (const auto& rule : deniedSyscalls()) {
    nlohmann::json args = nlohmann::json::array();
    for (const auto& test : rule.when) {
      // Docker's MASKED_EQ: value is the mask, valueTwo what the masked
      // argument must equal.
      if (test.op == ArgumentTest::Op::maskedEqual)
        args.push_back({{"index", 0}, {"value", test.value}, {"valueTwo", test.value}, {"op", "SCMP_CMP_MASKED_EQ"}});
      else
        args.push_back({{"index", 0}, {"value", test.value}, {"valueTwo", 0}, {"op", "SCMP_CMP_GT"}});
    }
    nlohmann::json entry = {
        {"names", {std::string(rule.name)}}, {"action", "SCMP_ACT_ERRNO"}, {"errnoRet", rule.error}};
    if (!args.empty()) entry["args"] = std::move(args);
    syscalls.push_back(std::move(entry));
  }
  nlohmann::json profile = {{"defaultAction", "SCMP_ACT_ALLOW"},
                            {"architectures", {dockerArchitecture()}},
                            {"syscalls", std::move(syscalls)}};
  return profile.dump();
}

}  // namespace tinyfaas::sandbox
