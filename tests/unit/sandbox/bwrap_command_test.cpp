// The sandbox's command line, property by property: every namespace new,
// a new session, no capabilities, seccomp last, nothing of the host shared
// whole, the environment only inside, daemon-private paths through fds.

#include "sandbox/bwrap_command.hpp"

#include <gtest/gtest.h>

#include <algorithm>

namespace tinyfaas::sandbox {
namespace {

bool contains(const std::vector<std::string>& args, std::vector<std::string> run) {
  return std::search(args.begin(), args.end(), run.begin(), run.end()) != args.end();
}

SandboxLayout handlerLayout() {
  SandboxLayout layout;
  layout.systemPaths = systemPaths();
  layout.tmpfs = {{"/tmp", 0}, {"/work", 64u << 20}};
  layout.fdBinds = {{4, "/var/lib/tinyfaas/functions/echo/v1", false}, {5, "/out", true}};
  layout.files = {{6, "/etc/resolv.conf"}};
  layout.env = {{"LD_PRELOAD", "./evil.so"}, {"TINYFAAS_LISTEN_FD", "3"}};
  layout.chdir = "/var/lib/tinyfaas/functions/echo/v1";
  layout.seccompFd = 7;
  return layout;
}

const std::vector<std::string> kCommand = {"/usr/bin/python3", "/opt/handler.py", "/run/echo.1/handler.sock"};

TEST(BwrapCommand, EveryPropertyOfTheSandbox) {
  const auto args = bwrapArguments("/usr/bin/bwrap", handlerLayout(), kCommand);
  ASSERT_FALSE(args.empty());
  EXPECT_EQ(args[0], "/usr/bin/bwrap");
  struct Property {
    const char* why;
    std::vector<std::string> run;
  };
  const std::vector<Property> required = {
      {"all namespaces new (user, mount, pid, net, ipc, uts, cgroup)", {"--unshare-all"}},
      {"a user namespace even where bwrap would skip it", {"--unshare-user"}},
      {"no user namespaces inside", {"--disable-userns"}},
      {"a new session: no TIOCSTI into the daemon's terminal", {"--new-session"}},
      {"gone when the daemon goes", {"--die-with-parent"}},
      {"no capabilities", {"--cap-drop", "ALL"}},
      {"its own /proc", {"--proc", "/proc"}},
      {"a minimal /dev", {"--dev", "/dev"}},
      {"/usr read-only", {"--ro-bind-try", "/usr", "/usr"}},
      {"passwd for user names", {"--ro-bind-try", "/etc/passwd", "/etc/passwd"}},
      {"a private /tmp", {"--tmpfs", "/tmp"}},
      {"a sized tmpfs", {"--size", std::to_string(64u << 20), "--tmpfs", "/work"}},
      {"code read-only through its fd", {"--ro-bind-fd", "4", "/var/lib/tinyfaas/functions/echo/v1"}},
      {"a writable fd bind where asked", {"--bind-fd", "5", "/out"}},
      {"data files from fds", {"--ro-bind-data", "6", "/etc/resolv.conf"}},
      {"the environment cleared inside", {"--clearenv"}},
      {"the function's variables set inside", {"--setenv", "LD_PRELOAD", "./evil.so"}},
      {"the listening socket named inside", {"--setenv", "TINYFAAS_LISTEN_FD", "3"}},
      {"working dir inside", {"--chdir", "/var/lib/tinyfaas/functions/echo/v1"}},
      {"seccomp from its fd", {"--seccomp", "7"}},
  };
  for (const auto& property : required) EXPECT_TRUE(contains(args, property.run)) << property.why;

  // Nothing of the host shared whole, nothing writable by name, no
  // capability added, never the host's network.
  for (const char* whole : {"/", "/etc", "/root", "/home", "/var", "/proc", "/sys", "/run"}) {
    for (const char* flag : {"--bind", "--ro-bind", "--ro-bind-try", "--bind-try", "--dev-bind", "--dev-bind-try"})
      EXPECT_FALSE(contains(args, {flag, whole, whole})) << flag << " " << whole;
  }
  for (const char* flag :
       {"--bind", "--bind-try", "--dev-bind", "--dev-bind-try", "--cap-add", "--share-net", "--unshare-user-try"}) {
    EXPECT_EQ(std::count(args.begin(), args.end(), flag), 0) << flag;
  }
  // The command follows "--", after every option; seccomp comes last.
  const auto separator = std::find(args.begin(), args.end(), "--");
  ASSERT_NE(separator, args.end());
  EXPECT_EQ(std::vector<std::string>(separator + 1, args.end()), kCommand);
  EXPECT_EQ(*(separator - 2), "--seccomp");
  // Every --clearenv precedes every --setenv.
  const auto clear = std::find(args.begin(), args.end(), "--clearenv");
  EXPECT_LT(clear, std::find(args.begin(), args.end(), "--setenv"));
}

TEST(BwrapCommand, OptionalPartsOnlyWhenAsked) {
  SandboxLayout layout;
  const auto args = bwrapArguments("bwrap", layout, {"true"});
  for (const char* flag : {"--seccomp", "--chdir", "--setenv", "--info-fd", "--size"})
    EXPECT_EQ(std::count(args.begin(), args.end(), flag), 0) << flag;
  layout.infoFd = 8;
  const auto withFds = bwrapArguments("bwrap", layout, {"true"});
  EXPECT_TRUE(contains(withFds, {"--info-fd", "8"}));
}

TEST(BwrapCommand, AnInstallWithNetworkOwnsItsNetworkAndHoldsOnlyNetAdmin) {
  SandboxLayout layout;
  layout.installNetwork = true;
  const auto args = bwrapArguments("bwrap", layout, {"true"});
  // Not nested: slirp4netns, as the sandbox user, joins the user namespace
  // that owns the network, and the script can close routes there.
  EXPECT_EQ(std::count(args.begin(), args.end(), "--disable-userns"), 0);
  EXPECT_EQ(std::count(args.begin(), args.end(), "--dev"), 0);
  EXPECT_TRUE(contains(args, {"--tmpfs", "/dev"}));
  EXPECT_TRUE(contains(args, {"--dev-bind", "/dev/null", "/dev/null"}));
  // Every capability dropped, then the one for the routes added back.
  const auto drop = std::find(args.begin(), args.end(), "--cap-drop");
  const auto add = std::find(args.begin(), args.end(), "--cap-add");
  ASSERT_NE(add, args.end());
  EXPECT_LT(drop, add);
  EXPECT_EQ(*(add + 1), "CAP_NET_ADMIN");
  EXPECT_EQ(std::count(args.begin(), args.end(), "--cap-add"), 1);
}

TEST(BwrapCommand, TheBwrapProcessGetsAFixedEnvironment) {
  const auto env = bwrapEnvironment();
  for (const auto& kv : env) {
    const std::string name = kv.substr(0, kv.find('='));
    EXPECT_TRUE(name == "PATH" || name == "LANG") << kv;
  }
}

TEST(BwrapCommand, InheritedFdsAreNumberedFromThree) {
  InheritedFds fds;
  auto first = memoryFile("a", "x");
  auto second = memoryFile("b", "y");
  ASSERT_TRUE(first && second);
  const int a = first->get(), b = second->get();
  EXPECT_EQ(fds.add(std::move(*first)), 3);
  EXPECT_EQ(fds.add(std::move(*second)), 4);
  EXPECT_EQ(fds.parentFds(), (std::vector<int>{a, b}));
}

TEST(BwrapCommand, MemoryFileReadsBackFromItsStart) {
  auto file = memoryFile("t", "hello");
  ASSERT_TRUE(file) << file.error();
  char buffer[8] = {};
  EXPECT_EQ(read(file->get(), buffer, sizeof buffer), 5);
  EXPECT_STREQ(buffer, "hello");
}

}  // namespace
}  // namespace tinyfaas::sandbox
