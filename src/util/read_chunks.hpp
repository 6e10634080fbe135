#pragma once
// Streaming a file through a callback in 1 MiB chunks, for digests and
// archives of files too large to hold in memory.

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <string_view>

#include <boost/system/result.hpp>

namespace tinyfaas {

// Reads `file` in chunks, handing each on; `onChunk` returns false to stop
// (an error). Returns the bytes read; an error names the file.
boost::system::result<std::uint64_t, std::string> readChunks(const std::filesystem::path& file,
                                                             const std::function<bool(std::string_view)>& onChunk);

}  // namespace tinyfaas
