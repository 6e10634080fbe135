#pragma once
// Files that survive a crash or power loss whole: either the old contents or
// the new ones, never a mix (write to a temporary name, fsync, rename, fsync
// the directory).

#include <filesystem>
#include <string>
#include <string_view>

#include <boost/system/result.hpp>

namespace tinyfaas {

// Replaces `file` with `contents` atomically and durably, readable and
// writable by the daemon's user only (0600: records hold env values). The
// temporary is `file` + ".tmp" in the same directory; a crash may leave it
// behind.
boost::system::result<void, std::string> writeFileDurably(const std::filesystem::path& file, std::string_view contents);

// Makes the entries of `dir` (creations, renames, removals) durable.
boost::system::result<void, std::string> syncDirectory(const std::filesystem::path& dir);

// Flushes every file of the filesystem holding `path` (syncfs): one call
// instead of an fsync per file of a freshly unpacked tree.
boost::system::result<void, std::string> syncFilesystem(const std::filesystem::path& path);

}  // namespace tinyfaas
