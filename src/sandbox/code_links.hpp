#pragma once
// A function's code shown to a sandbox that was started before the function
// was known (the process backend's warm pool): a tree of hard links to the
// deployed files, made in a folder the sandbox already has bound read-only.

#include <filesystem>

#include <boost/system/result.hpp>

namespace tinyfaas::sandbox {

// Recreates the tree at `from` under the new folder `to` (same file
// system): folders with their mode and group, files as hard links (the same
// inodes, so the same read-only modes), symlinks as they are. Fails on
// anything else (a device, a fifo) and when `to` exists.
boost::system::result<void, std::string> linkTree(const std::filesystem::path& from, const std::filesystem::path& to);

}  // namespace tinyfaas::sandbox
