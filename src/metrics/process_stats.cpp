#include "metrics/process_stats.hpp"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <unordered_set>

namespace tinyfaas::metrics {

namespace fs = std::filesystem;

namespace {

std::uint64_t residentBytes() {
  std::ifstream statm("/proc/self/statm");
  std::uint64_t sizePages = 0;
  std::uint64_t residentPages = 0;
  if (!(statm >> sizePages >> residentPages)) return 0;
  return residentPages * static_cast<std::uint64_t>(sysconf(_SC_PAGESIZE));
}

// Socket inodes of our open descriptors, and how many descriptors there are.
std::unordered_set<std::string> socketInodes(std::uint64_t& openFds) {
  std::unordered_set<std::string> inodes;
  std::error_code ec;
  for (fs::directory_iterator it("/proc/self/fd", ec), end; !ec && it != end; it.increment(ec)) {
    ++openFds;
    std::error_code linkError;
    const std::string target = fs::read_symlink(it->path(), linkError).string();
    // "socket:[12345]"
    if (!linkError && target.starts_with("socket:[") && target.ends_with(']'))
      inodes.insert(target.substr(8, target.size() - 9));
  }
  return inodes;
}

std::uint64_t establishedTcp(const std::unordered_set<std::string>& inodes) {
  std::uint64_t count = 0;
  for (const char* table : {"/proc/net/tcp", "/proc/net/tcp6"}) {
    std::ifstream in(table);
    std::string line;
    std::getline(in, line);  // header
    while (std::getline(in, line)) {
      // sl local rem st tx:rx tr:when retrnsmt uid timeout inode
      std::istringstream fields(line);
      std::string sl, local, remote, state, queues, timer, retransmits, uid, timeout, inode;
      if (!(fields >> sl >> local >> remote >> state >> queues >> timer >> retransmits >> uid >> timeout >> inode))
        continue;
      if (state == "01" && inodes.contains(inode)) ++count;  // 01 = ESTABLISHED
    }
  }
  return count;
}

}  // namespace

ProcessStats readProcessStats() {
  ProcessStats stats;
  stats.residentBytes = residentBytes();
  const auto inodes = socketInodes(stats.openFds);
  stats.tcpConnections = establishedTcp(inodes);
  return stats;
}

}  // namespace tinyfaas::metrics
