#include "util/durable_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

namespace tinyfaas {

namespace fs = std::filesystem;

namespace {

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }
  // close() reports write errors some filesystems only detect then.
  bool close() { return ::close(std::exchange(fd_, -1)) == 0; }

 private:
  int fd_;
};

std::string failure(const char* what, const fs::path& path) {
  return std::string("cannot ") + what + " " + path.string() + ": " + std::strerror(errno);
}

}  // namespace

boost::system::result<void, std::string> writeFileDurably(const fs::path& file, std::string_view contents) {
  fs::path temporary = file;
  temporary += ".tmp";
  {
    Fd fd(::open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
    if (fd.get() < 0) return failure("create", temporary);
    // A temporary a crash left keeps its old mode through O_TRUNC.
    if (::fchmod(fd.get(), 0600) != 0) return failure("chmod", temporary);
    while (!contents.empty()) {
      const ssize_t written = ::write(fd.get(), contents.data(), contents.size());
      if (written < 0 && errno == EINTR) continue;
      if (written < 0) return failure("write", temporary);
      contents.remove_prefix(static_cast<std::size_t>(written));
    }
    if (::fsync(fd.get()) != 0) return failure("fsync", temporary);
    if (!fd.close()) return failure("close", temporary);
  }
  if (::rename(temporary.c_str(), file.c_str()) != 0) return failure("rename to", file);
  return syncDirectory(file.parent_path());
}

boost::system::result<void, std::string> syncDirectory(const fs::path& dir) {
  Fd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (fd.get() < 0) return failure("open", dir);
  if (::fsync(fd.get()) != 0) return failure("fsync", dir);
  return {};
}

boost::system::result<void, std::string> syncFilesystem(const fs::path& path) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) return failure("open", path);
  if (::syncfs(fd.get()) != 0) return failure("sync the filesystem of", path);
  return {};
}

}  // namespace tinyfaas
