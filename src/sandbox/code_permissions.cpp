#include "sandbox/code_permissions.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace tinyfaas::sandbox {

namespace fs = std::filesystem;

namespace {

boost::system::result<void, std::string> give(const fs::path& path, gid_t gid, mode_t mode) {
  if (::lchown(path.c_str(), static_cast<uid_t>(-1), gid) != 0 || ::chmod(path.c_str(), mode) != 0)
    return "cannot set the group or mode of " + path.string() + ": " + std::strerror(errno);
  return {};
}

}  // namespace

boost::system::result<void, std::string> shareWithSandbox(const fs::path& root, const fs::path& dir, gid_t gid) {
  const fs::path relative = dir.lexically_normal().lexically_relative(root.lexically_normal());
  if (relative.empty() || *relative.begin() == "..") return dir.string() + " is not below " + root.string();
  fs::path ancestor = root;
  for (auto part = relative.begin(); part != relative.end(); ++part) {
    // Owner keeps its bits; the group may pass, others nothing.
    struct stat st {};
    if (::stat(ancestor.c_str(), &st) != 0) return "cannot stat " + ancestor.string() + ": " + std::strerror(errno);
    if (auto ok = give(ancestor, gid, (st.st_mode & S_IRWXU) | S_IXGRP); !ok) return ok;
    ancestor /= *part;
  }
  if (auto ok = give(dir, gid, 0750); !ok) return ok;
  std::error_code ec;
  for (fs::recursive_directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    struct stat st {};
    if (::lstat(it->path().c_str(), &st) != 0 || S_ISLNK(st.st_mode)) continue;
    if (auto ok = give(it->path(), gid, codeMode(S_ISDIR(st.st_mode), st.st_mode)); !ok) return ok;
  }
  if (ec) return "cannot walk " + dir.string() + ": " + ec.message();
  return {};
}

bool passableByOthers(const fs::path& path) {
  std::error_code ec;
  const fs::path real = fs::canonical(path, ec);
  if (ec) return false;
  struct stat st {};
  for (fs::path dir = real.parent_path();; dir = dir.parent_path()) {
    if (::stat(dir.c_str(), &st) != 0 || !(st.st_mode & S_IXOTH)) return false;
    if (dir == dir.root_path()) break;
  }
  return true;
}

bool reachableByOthers(const fs::path& path) {
  if (!passableByOthers(path)) return false;
  std::error_code ec;
  const fs::path real = fs::canonical(path, ec);
  struct stat st {};
  if (ec || ::stat(real.c_str(), &st) != 0) return false;
  return S_ISDIR(st.st_mode) ? (st.st_mode & S_IROTH) && (st.st_mode & S_IXOTH) : (st.st_mode & S_IROTH);
}

}  // namespace tinyfaas::sandbox
