#include "sandbox/bwrap_command.hpp"

#include <algorithm>

#include <fcntl.h>
#include <sys/mman.h>

#include <cerrno>
#include <cstring>

namespace tinyfaas::sandbox {

namespace fs = std::filesystem;

int InheritedFds::add(UniqueFd fd) {
  fds_.push_back(std::move(fd));
  return 2 + static_cast<int>(fds_.size());
}

std::vector<int> InheritedFds::parentFds() const {
  std::vector<int> out;
  for (const auto& fd : fds_) out.push_back(fd.get());
  return out;
}

std::vector<fs::path> systemPaths() {
  std::vector<fs::path> paths = {"/usr"};
  // Only the parts of /etc that programs need to start: /etc as a whole
  // holds secrets a function has no business reading.
  for (const char* file :
       {"/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/alternatives", "/etc/passwd", "/etc/group",
        "/etc/nsswitch.conf", "/etc/hosts", "/etc/localtime", "/etc/ssl", "/etc/ca-certificates", "/etc/mime.types"}) {
    paths.emplace_back(file);
  }
  return paths;
}

std::vector<std::string> bwrapArguments(const std::string& bwrap, const SandboxLayout& layout,
                                        const std::vector<std::string>& command) {
  // Every namespace new (--unshare-user spelled out: --disable-userns
  // needs it), no capabilities even where bwrap could keep some, its own
  // session (no TIOCSTI into the daemon's terminal), gone with the daemon.
  // clang-format off
  std::vector<std::string> args = {bwrap,           "--unshare-all",     "--unshare-user", "--disable-userns",
                                   "--new-session", "--die-with-parent", "--cap-drop",     "ALL",
                                   "--proc",        "/proc",             "--dev",          "/dev"};
  // clang-format on
  if (layout.installNetwork) {
    args.erase(std::find(args.begin(), args.end(), "--disable-userns"));
    args.erase(args.end() - 2, args.end());
    args.insert(args.end(), {"--tmpfs", "/dev"});
    for (const char* device : {"/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom"})
      args.insert(args.end(), {"--dev-bind", device, device});
    // clang-format off
    args.insert(args.end(), {"--symlink", "/proc/self/fd", "/dev/fd", "--symlink", "/proc/self/fd/0", "/dev/stdin",
                             "--symlink", "/proc/self/fd/1", "/dev/stdout", "--symlink", "/proc/self/fd/2",
                             "/dev/stderr", "--tmpfs", "/dev/shm", "--cap-add", "CAP_NET_ADMIN"});
    // clang-format on
  }
  for (const auto& path : layout.systemPaths) {
    args.insert(args.end(), {"--ro-bind-try", path.string(), path.string()});
  }
  // Debian's merged /usr makes these symlinks; older layouts have real dirs.
  for (const char* dir : {"/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"}) {
    std::error_code ec;
    if (fs::is_symlink(dir, ec)) {
      args.insert(args.end(), {"--symlink", fs::read_symlink(dir, ec).string(), dir});
    } else if (fs::exists(dir, ec)) {
      args.insert(args.end(), {"--ro-bind", dir, dir});
    }
  }
  for (const auto& [path, size] : layout.tmpfs) {
    if (size > 0) args.insert(args.end(), {"--size", std::to_string(size)});
    args.insert(args.end(), {"--tmpfs", path.string()});
  }
  for (const auto& bind : layout.fdBinds) {
    args.insert(args.end(),
                {bind.writable ? "--bind-fd" : "--ro-bind-fd", std::to_string(bind.fd), bind.target.string()});
  }
  for (const auto& [fd, target] : layout.files) {
    args.insert(args.end(), {"--ro-bind-data", std::to_string(fd), target.string()});
  }
  args.push_back("--clearenv");
  for (const auto& [name, value] : layout.env) args.insert(args.end(), {"--setenv", name, value});
  if (!layout.chdir.empty()) args.insert(args.end(), {"--chdir", layout.chdir.string()});
  if (layout.infoFd >= 0) args.insert(args.end(), {"--info-fd", std::to_string(layout.infoFd)});
  // Last before the command: bwrap loads it right before exec.
  if (layout.seccompFd >= 0) args.insert(args.end(), {"--seccomp", std::to_string(layout.seccompFd)});
  args.push_back("--");
  args.insert(args.end(), command.begin(), command.end());
  return args;
}

std::vector<std::string> bwrapEnvironment() { return {"PATH=/usr/bin:/bin", "LANG=C.UTF-8"}; }

boost::system::result<UniqueFd, std::string> memoryFile(const char* name, std::string_view content) {
  UniqueFd fd(memfd_create(name, MFD_CLOEXEC));
  if (!fd) return std::string("memfd_create: ") + std::strerror(errno);
  for (std::size_t done = 0; done < content.size();) {
    const ssize_t n = write(fd.get(), content.data() + done, content.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return std::string("writing an in-memory file: ") + std::strerror(errno);
    done += static_cast<std::size_t>(n);
  }
  if (lseek(fd.get(), 0, SEEK_SET) != 0) return std::string("lseek: ") + std::strerror(errno);
  return fd;
}

boost::system::result<UniqueFd, std::string> openPath(const fs::path& path) {
  UniqueFd fd(open(path.c_str(), O_PATH | O_CLOEXEC));
  if (!fd) return "cannot open " + path.string() + ": " + std::strerror(errno);
  return fd;
}

}  // namespace tinyfaas::sandbox
