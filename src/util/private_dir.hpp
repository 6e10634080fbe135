#pragma once
// The daemon's state directory: records with env values, function code,
// the node id. Nobody but the daemon's user may list or enter it.

#include <filesystem>
#include <string>

#include <boost/system/result.hpp>

namespace tinyfaas {

// Creates `dir` (parents with the usual modes) as 0700, or tightens an
// existing one and logs a warning that says so: no read or write for the
// group, nothing for others, no special bits; a group search bit (0710)
// stays, the sandbox's group passes through to its code that way.
// A path that is something else than a directory is refused; a symlink to
// one is followed, as an operator's link to another disk should be.
boost::system::result<void, std::string> makePrivateDirectory(const std::filesystem::path& dir);

}  // namespace tinyfaas
