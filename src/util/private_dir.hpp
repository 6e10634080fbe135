#pragma once
// The daemon's state directory: records with env values, function code,
// the node id. Nobody but the daemon's user may list or enter it.

#include <filesystem>
#include <string>

#include <boost/system/result.hpp>

namespace tinyfaas {

// Creates `dir` (parents with the usual modes) as 0700, or tightens an
// existing one with a looser mode to 0700 and logs a warning that says so.
// Refuses a path that is not a directory (a symlink to one is followed, as
// an operator's link to another disk is).
boost::system::result<void, std::string> makePrivateDirectory(const std::filesystem::path& dir);

}  // namespace tinyfaas
