#include "backend/docker/rootfs.hpp"

#include <glob.h>
#include <sys/stat.h>

#include <array>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <fstream>

#include <nettle/sha2.h>

#include "archive/archive_module.hpp"
#include "util/read_chunks.hpp"

namespace tinyfaas::docker {

namespace fs = std::filesystem;

namespace {

// Loops of symlinks: the kernel gives up after 40 too.
constexpr int kMaxSymlinkDepth = 40;

std::string errnoText() { return std::strerror(errno); }

class Sha256 {
 public:
  Sha256() { sha256_init(&ctx_); }
  void update(std::string_view bytes) {
    sha256_update(&ctx_, bytes.size(), reinterpret_cast<const std::uint8_t*>(bytes.data()));
  }
  // Fields are length-prefixed so that ("ab","c") and ("a","bc") differ.
  void field(std::string_view bytes) {
    update(std::to_string(bytes.size()));
    update(":");
    update(bytes);
  }
  std::string hex() {
    std::uint8_t out[SHA256_DIGEST_SIZE];
    sha256_digest(&ctx_, sizeof out, out);
    static constexpr char digits[] = "0123456789abcdef";
    std::string text;
    for (std::size_t i = 0; i < sizeof out; ++i) {
      text += digits[out[i] >> 4];
      text += digits[out[i] & 0xF];
    }
    return text;
  }

 private:
  sha256_ctx ctx_;
};

void readLdSoConf(const fs::path& file, std::vector<fs::path>& dirs, int depth) {
  if (depth > 8) return;
  std::ifstream in(file);
  std::string line;
  while (std::getline(in, line)) {
    if (auto hash = line.find('#'); hash != std::string::npos) line.erase(hash);
    const auto first = line.find_first_not_of(" \t");
    if (first == std::string::npos) continue;
    line = line.substr(first, line.find_last_not_of(" \t\r") - first + 1);
    if (line.rfind("include", 0) == 0 && line.size() > 7 && (line[7] == ' ' || line[7] == '\t')) {
      std::string pattern = line.substr(line.find_first_not_of(" \t", 7));
      if (pattern.front() != '/') pattern = (file.parent_path() / pattern).string();
      glob_t matches{};
      if (::glob(pattern.c_str(), 0, nullptr, &matches) == 0) {
        for (std::size_t i = 0; i < matches.gl_pathc; ++i) readLdSoConf(matches.gl_pathv[i], dirs, depth + 1);
      }
      ::globfree(&matches);
    } else if (line.rfind("hwcap", 0) == 0) {
      continue;
    } else if (line.front() == '/') {
      dirs.emplace_back(line);
    }
  }
}

bool isRegularFile(const fs::path& p) {
  struct stat st {};
  return ::stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

std::string replaceAll(std::string text, std::string_view from, std::string_view to) {
  for (auto at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size()))
    text.replace(at, from.size(), to);
  return text;
}

}  // namespace

std::string sha256Hex(std::string_view bytes) {
  Sha256 sha;
  sha.update(bytes);
  return sha.hex();
}

// ---------------------------------------------------------------------------

LibraryResolver LibraryResolver::fromHost(const fs::path& ldSoConf) {
  std::vector<fs::path> dirs;
  readLdSoConf(ldSoConf, dirs, 0);
  // glibc's built-in trusted directories come after the configured ones.
  for (const char* dir : {"/lib64", "/usr/lib64", "/lib", "/usr/lib"}) dirs.emplace_back(dir);
  std::vector<fs::path> unique;
  std::set<std::string> seen;
  for (auto& dir : dirs) {
    if (seen.insert(dir.lexically_normal().string()).second) unique.push_back(dir.lexically_normal());
  }
  return LibraryResolver(std::move(unique));
}

LibraryResolver::LibraryResolver(std::vector<fs::path> systemDirs) : systemDirs_(std::move(systemDirs)) {}

std::optional<fs::path> LibraryResolver::find(const std::string& soname, const ElfInfo& loader,
                                              const fs::path& loaderPath) const {
  auto matches = [&](const fs::path& candidate) {
    if (!isRegularFile(candidate)) return false;
    auto info = readElf(candidate);
    return info && info->is64 == loader.is64 && info->littleEndian == loader.littleEndian &&
           info->machine == loader.machine;
  };
  if (soname.find('/') != std::string::npos) {
    if (matches(soname)) return fs::path(soname);
    return std::nullopt;
  }
  std::error_code ec;
  const fs::path origin = fs::canonical(loaderPath, ec).parent_path();
  std::vector<fs::path> dirs;
  auto addExpanded = [&](const std::vector<std::string>& list) {
    for (const auto& entry : list) {
      std::string expanded = replaceAll(replaceAll(entry, "${ORIGIN}", origin.string()), "$ORIGIN", origin.string());
      dirs.emplace_back(expanded);
    }
  };
  // DT_RPATH counts only when there is no DT_RUNPATH (ld.so(8)).
  if (loader.runpath.empty()) addExpanded(loader.rpath);
  addExpanded(loader.runpath);
  dirs.insert(dirs.end(), systemDirs_.begin(), systemDirs_.end());
  for (const auto& dir : dirs) {
    fs::path candidate = dir / soname;
    if (matches(candidate)) return candidate;
  }
  return std::nullopt;
}

// ---------------------------------------------------------------------------

RootfsBuilder::RootfsBuilder(LibraryResolver resolver) : resolver_(std::move(resolver)) { addDirectory("/", 0755); }

void RootfsBuilder::ensureParents(const std::string& path) {
  fs::path parent = fs::path(path).parent_path();
  std::vector<std::string> missing;
  while (!parent.empty() && entries_.find(parent.string()) == entries_.end()) {
    missing.push_back(parent.string());
    if (parent == parent.root_path()) break;
    parent = parent.parent_path();
  }
  for (auto it = missing.rbegin(); it != missing.rend(); ++it) {
    RootfsEntry dir;
    dir.type = RootfsEntry::Type::directory;
    dir.path = *it;
    dir.mode = 0755;
    entries_.emplace(*it, std::move(dir));
  }
}

void RootfsBuilder::addDirectory(const std::string& path, unsigned mode, unsigned uid, unsigned gid) {
  const std::string normal = fs::path(path).lexically_normal().string();
  auto it = entries_.find(normal);
  if (it != entries_.end()) {
    // An explicit mode or owner wins over the default given to a parent.
    if (it->second.type == RootfsEntry::Type::directory) {
      it->second.mode = mode;
      it->second.uid = uid;
      it->second.gid = gid;
    }
    return;
  }
  ensureParents(normal);
  RootfsEntry dir;
  dir.type = RootfsEntry::Type::directory;
  dir.path = normal;
  dir.mode = mode;
  dir.uid = uid;
  dir.gid = gid;
  entries_.emplace(normal, std::move(dir));
}

void RootfsBuilder::addFile(const std::string& path, std::string content, unsigned mode) {
  const std::string normal = fs::path(path).lexically_normal().string();
  ensureParents(normal);
  RootfsEntry file;
  file.type = RootfsEntry::Type::file;
  file.path = normal;
  file.content = std::move(content);
  file.generated = true;
  file.mode = mode;
  entries_[normal] = std::move(file);
}

void RootfsBuilder::addSymlink(const std::string& path, const std::string& target) {
  const std::string normal = fs::path(path).lexically_normal().string();
  ensureParents(normal);
  RootfsEntry link;
  link.type = RootfsEntry::Type::symlink;
  link.path = normal;
  link.linkTarget = target;
  link.mode = 0777;
  entries_[normal] = std::move(link);
}

boost::system::result<fs::path, std::string> RootfsBuilder::resolveHostPath(const fs::path& path, int depth) {
  using boost::system::in_place_error;
  if (depth > kMaxSymlinkDepth) return {in_place_error, "too many levels of symbolic links resolving " + path.string()};
  if (!path.is_absolute()) return {in_place_error, "not an absolute path: " + path.string()};
  const fs::path normal = path.lexically_normal();
  std::vector<fs::path> parts(++normal.begin(), normal.end());
  fs::path current = "/";
  for (std::size_t i = 0; i < parts.size(); ++i) {
    const fs::path& part = parts[i];
    if (part.empty() || part == ".") continue;
    if (part == "..") {
      current = current.parent_path();
      continue;
    }
    const fs::path next = current / part;
    struct stat st {};
    if (::lstat(next.c_str(), &st) != 0)
      return {in_place_error, "cannot find " + path.string() + " (" + next.string() + ": " + errnoText() + ")"};
    if (S_ISLNK(st.st_mode)) {
      std::error_code ec;
      const fs::path target = fs::read_symlink(next, ec);
      if (ec) return {in_place_error, "cannot read symlink " + next.string() + ": " + ec.message()};
      addSymlink(next.string(), target.string());
      fs::path rest = target.is_absolute() ? target : current / target;
      for (std::size_t j = i + 1; j < parts.size(); ++j) rest /= parts[j];
      return resolveHostPath(rest, depth + 1);
    }
    if (i + 1 < parts.size()) {
      if (!S_ISDIR(st.st_mode)) return {in_place_error, next.string() + " is not a directory"};
      if (entries_.find(next.string()) == entries_.end()) addDirectory(next.string(), st.st_mode & 0755);
    }
    current = next;
  }
  return {boost::system::in_place_value, current};
}

boost::system::result<void, std::string> RootfsBuilder::addHostPath(const fs::path& path) {
  auto canonical = resolveHostPath(path, 0);
  if (!canonical) return canonical.error();
  struct stat st {};
  if (::stat(canonical->c_str(), &st) != 0) return "cannot find " + canonical->string() + ": " + errnoText();
  if (S_ISDIR(st.st_mode)) {
    if (entries_.find(canonical->string()) == entries_.end()) addDirectory(canonical->string(), st.st_mode & 0755);
    return {};
  }
  return addHostRegular(*canonical, canonical->string(), 0755, true);
}

boost::system::result<void, std::string> RootfsBuilder::addHostFileAs(const fs::path& source,
                                                                      const std::string& imagePath, unsigned mode) {
  std::error_code ec;
  const fs::path canonical = fs::canonical(source, ec);
  if (ec) return "cannot find " + source.string() + ": " + ec.message();
  if (!isRegularFile(canonical)) return source.string() + " is not a regular file";
  auto added = addHostRegular(canonical, imagePath, 0755, true);
  if (!added) return added;
  entries_[fs::path(imagePath).lexically_normal().string()].mode = mode;
  return {};
}

boost::system::result<void, std::string> RootfsBuilder::addHostRegular(const fs::path& canonical,
                                                                       const std::string& imagePath, unsigned modeMask,
                                                                       bool required) {
  struct stat st {};
  if (::stat(canonical.c_str(), &st) != 0) return "cannot find " + canonical.string() + ": " + errnoText();
  if (!S_ISREG(st.st_mode)) return canonical.string() + " is not a regular file";
  const std::string normal = fs::path(imagePath).lexically_normal().string();
  ensureParents(normal);
  RootfsEntry file;
  file.type = RootfsEntry::Type::file;
  file.path = normal;
  file.source = canonical;
  // No set-id bits and no group/other write: nothing in the image needs them.
  file.mode = st.st_mode & modeMask;
  file.mtime = st.st_mtim.tv_sec;
  entries_[normal] = std::move(file);
  return addElfDependencies(canonical, required);
}

boost::system::result<void, std::string> RootfsBuilder::addElfDependencies(const fs::path& hostFile, bool required) {
  if (!elfDone_.insert(hostFile.string()).second) return {};
  {
    std::array<char, 4> magic{};
    std::ifstream in(hostFile, std::ios::binary);
    in.read(magic.data(), magic.size());
    if (in.gcount() < 4 || !looksLikeElf(std::string_view(magic.data(), magic.size()))) return {};
  }
  auto info = readElf(hostFile);
  if (!info) return info.error();
  if (!info->interpreter.empty()) {
    if (auto added = addHostPath(info->interpreter); !added)
      return hostFile.string() + " needs its loader " + info->interpreter + ": " + added.error();
  }
  for (const auto& soname : info->needed) {
    auto found = resolver_.find(soname, *info, hostFile);
    if (!found) {
      std::string problem = hostFile.string() + " needs " + soname + ", which is not installed";
      if (required) return problem;
      warnings_.push_back(problem);
      continue;
    }
    if (auto added = addHostPath(*found); !added) {
      if (required) return added;
      warnings_.push_back(added.error());
    }
  }
  return {};
}

boost::system::result<void, std::string> RootfsBuilder::addHostTree(
    const fs::path& dir, const std::function<bool(const fs::path& relative)>& keep) {
  auto root = resolveHostPath(dir, 0);
  if (!root) return root.error();
  std::error_code ec;
  if (!fs::is_directory(*root, ec)) return dir.string() + " is not a directory";
  addDirectory(root->string(), 0755);
  fs::recursive_directory_iterator it(*root, fs::directory_options::none, ec);
  if (ec) return "cannot list " + root->string() + ": " + ec.message();
  for (; it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (ec) return "cannot list " + root->string() + ": " + ec.message();
    const fs::path& p = it->path();
    const fs::path relative = p.lexically_relative(*root);
    if (keep && !keep(relative)) {
      if (it->is_directory(ec) && !it->is_symlink(ec)) it.disable_recursion_pending();
      continue;
    }
    struct stat st {};
    if (::lstat(p.c_str(), &st) != 0) continue;  // vanished while listing
    if (S_ISLNK(st.st_mode)) {
      const fs::path target = fs::read_symlink(p, ec);
      if (ec) return "cannot read symlink " + p.string() + ": " + ec.message();
      addSymlink(p.string(), target.string());
      // A link to a file outside the tree (Debian's sitecustomize.py) brings
      // that file; a dangling one stays dangling, as on the host.
      const fs::path resolved = target.is_absolute() ? target : p.parent_path() / target;
      if (isRegularFile(resolved)) {
        if (auto added = addHostPath(resolved); !added) warnings_.push_back(added.error());
      }
    } else if (S_ISDIR(st.st_mode)) {
      addDirectory(p.string(), st.st_mode & 0755);
    } else if (S_ISREG(st.st_mode)) {
      if (auto added = addHostRegular(p, p.string(), 0755, false); !added) {
        warnings_.push_back(added.error());
        entries_.erase(p.string());
      }
    }
  }
  return {};
}

std::uint64_t RootfsBuilder::contentBytes() const {
  std::uint64_t total = 0;
  for (const auto& [path, entry] : entries_) {
    if (entry.type != RootfsEntry::Type::file) continue;
    if (entry.generated) {
      total += entry.content.size();
    } else {
      struct stat st {};
      if (::stat(entry.source.c_str(), &st) == 0) total += static_cast<std::uint64_t>(st.st_size);
    }
  }
  return total;
}

boost::system::result<std::string, std::string> RootfsBuilder::digest(std::string_view salt) const {
  Sha256 all;
  all.field(salt);
  for (const auto& [path, entry] : entries_) {
    all.field(path);
    all.field(std::to_string(static_cast<int>(entry.type)));
    all.field(std::to_string(entry.mode) + "/" + std::to_string(entry.uid) + "/" + std::to_string(entry.gid));
    if (entry.type == RootfsEntry::Type::symlink) {
      all.field(entry.linkTarget);
    } else if (entry.type == RootfsEntry::Type::file) {
      // Not the mtime: the same files checked out or installed at another
      // time make the same image (a second tinyfaas on this engine reuses it).
      if (entry.generated) {
        all.field(sha256Hex(entry.content));
      } else {
        Sha256 content;
        auto read = readChunks(entry.source, [&](std::string_view chunk) {
          content.update(chunk);
          return true;
        });
        if (!read) return {boost::system::in_place_error, read.error()};
        all.field(content.hex());
      }
    }
  }
  return {boost::system::in_place_value, all.hex()};
}

boost::system::result<std::uint64_t, std::string> RootfsBuilder::writeTar(const fs::path& file) const {
  auto api = loadModuleApi<ArchiveModule>("archive");
  if (!api) return "the archive module cannot be loaded: " + api.error();
  return (*api)->writeTar(entries_, file);
}

}  // namespace tinyfaas::docker
