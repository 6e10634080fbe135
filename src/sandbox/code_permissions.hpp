#pragma once
// Modes of deployed code: readable by the sandbox's group G, writable by
// nobody but the daemon, unreadable by other users.

#include <sys/types.h>

#include <filesystem>

#include <boost/system/result.hpp>

namespace tinyfaas::sandbox {

// The mode of a file or folder of a function's code: the daemon (owner)
// writes, the sandbox (group) reads and executes, other users get nothing;
// never setuid, setgid or sticky. A file is executable when it had (or the
// zip gave it) any x bit. Inline: the archive module, which links none of
// the sandbox, applies it to what it unpacks.
inline mode_t codeMode(bool directory, mode_t mode) { return directory || (mode & 0111) != 0 ? 0750 : 0640; }

// Gives the tree at `dir` to group `gid`: directories 0750, files 0640
// (0750 when any execute bit was set), symlinks untouched; and lets the
// group only pass through (0710, not list) every directory from `root`
// down to dir's parent. bwrap 0.8 resolves even --ro-bind-fd sources by
// path as the sandbox's uid, so that uid needs search permission there.
boost::system::result<void, std::string> shareWithSandbox(const std::filesystem::path& root,
                                                          const std::filesystem::path& dir, gid_t gid);

// Whether every directory above `path` lets other users pass.
bool passableByOthers(const std::filesystem::path& path);
// Whether every directory above `path` lets other users pass and `path`
// itself is readable by them (then the sandbox can bind it by name).
bool reachableByOthers(const std::filesystem::path& path);

}  // namespace tinyfaas::sandbox
