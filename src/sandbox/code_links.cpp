#include "sandbox/code_links.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace tinyfaas::sandbox {

namespace fs = std::filesystem;

namespace {

boost::system::result<void, std::string> makeFolder(const fs::path& path, const struct stat& like) {
  if (::mkdir(path.c_str(), 0700) != 0 || ::chown(path.c_str(), static_cast<uid_t>(-1), like.st_gid) != 0 ||
      ::chmod(path.c_str(), like.st_mode & 07777) != 0)
    return "cannot make " + path.string() + ": " + std::strerror(errno);
  return {};
}

}  // namespace

boost::system::result<void, std::string> linkTree(const fs::path& from, const fs::path& to) {
  struct stat st {};
  if (::stat(from.c_str(), &st) != 0) return "cannot stat " + from.string() + ": " + std::strerror(errno);
  if (auto made = makeFolder(to, st); !made) return made;
  std::error_code ec;
  for (fs::recursive_directory_iterator it(from, ec), end; !ec && it != end; it.increment(ec)) {
    const fs::path target = to / it->path().lexically_relative(from);
    if (::lstat(it->path().c_str(), &st) != 0)
      return "cannot stat " + it->path().string() + ": " + std::strerror(errno);
    if (S_ISDIR(st.st_mode)) {
      if (auto made = makeFolder(target, st); !made) return made;
    } else if (S_ISREG(st.st_mode)) {
      if (::link(it->path().c_str(), target.c_str()) != 0)
        return "cannot link " + it->path().string() + ": " + std::strerror(errno);
    } else if (S_ISLNK(st.st_mode)) {
      // Resolved inside the sandbox, which has nothing of the host's to point at.
      fs::create_symlink(fs::read_symlink(it->path(), ec), target, ec);
      if (ec) return "cannot copy the link " + it->path().string() + ": " + ec.message();
    } else {
      return it->path().string() + " is neither a file, a folder nor a link";
    }
  }
  if (ec) return "cannot walk " + from.string() + ": " + ec.message();
  return {};
}

}  // namespace tinyfaas::sandbox
