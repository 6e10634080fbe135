#include "util/process_memory.hpp"

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace tinyfaas {
namespace {

std::optional<std::uint64_t> pssBytes(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/smaps_rollup");
  std::string key;
  std::uint64_t kb = 0;
  while (in >> key) {
    if (key == "Pss:") return (in >> kb) ? std::optional<std::uint64_t>(kb * 1024) : std::nullopt;
    in.ignore(4096, '\n');
  }
  return std::nullopt;
}

std::vector<pid_t> children(pid_t pid) {
  std::vector<pid_t> out;
  std::error_code ec;
  for (const auto& task : std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/task", ec)) {
    std::ifstream in(task.path() / "children");
    pid_t child = 0;
    while (in >> child) out.push_back(child);
  }
  return out;
}

}  // namespace

std::optional<std::uint64_t> processTreePssBytes(pid_t root, std::size_t maxProcesses) {
  const auto rootBytes = pssBytes(root);
  if (!rootBytes) return std::nullopt;
  std::uint64_t total = *rootBytes;
  std::vector<pid_t> todo = children(root);
  for (std::size_t read = 1; !todo.empty() && read < maxProcesses; ++read) {
    const pid_t pid = todo.back();
    todo.pop_back();
    total += pssBytes(pid).value_or(0);
    if (todo.size() < maxProcesses) {
      for (const pid_t child : children(pid)) todo.push_back(child);
    }
  }
  return total;
}

}  // namespace tinyfaas
