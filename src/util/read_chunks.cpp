#include "util/read_chunks.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "util/unique_fd.hpp"

namespace tinyfaas {

boost::system::result<std::uint64_t, std::string> readChunks(const std::filesystem::path& file,
                                                             const std::function<bool(std::string_view)>& onChunk) {
  const UniqueFd fd(::open(file.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return "cannot read " + file.string() + ": " + std::strerror(errno);
  std::vector<char> buffer(1u << 20);
  std::uint64_t total = 0;
  for (;;) {
    const ssize_t n = ::read(fd.get(), buffer.data(), buffer.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return "cannot read " + file.string() + ": " + std::strerror(errno);
    }
    if (n == 0) break;
    total += static_cast<std::uint64_t>(n);
    if (!onChunk(std::string_view(buffer.data(), static_cast<std::size_t>(n)))) return "cannot copy " + file.string();
  }
  return total;
}

}  // namespace tinyfaas
