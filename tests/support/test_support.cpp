#include "test_support.hpp"

#include <stdlib.h>

#include <fstream>
#include <sstream>
#include <thread>
#include <vector>

namespace tinyfaas::test {

namespace fs = std::filesystem;

TempDir::TempDir() {
  std::string pattern = (fs::temp_directory_path() / "tfu-XXXXXX").string();
  std::vector<char> buffer(pattern.begin(), pattern.end());
  buffer.push_back('\0');
  if (::mkdtemp(buffer.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  path_ = buffer.data();
}

TempDir::~TempDir() {
  std::error_code ignored;
  // Extracted trees may hold read-only directories; make them removable.
  for (auto it = fs::recursive_directory_iterator(path_, fs::directory_options::skip_permission_denied, ignored);
       it != fs::recursive_directory_iterator(); it.increment(ignored)) {
    if (it->is_directory(ignored) && !it->is_symlink(ignored))
      fs::permissions(it->path(), fs::perms::owner_all, fs::perm_options::add, ignored);
  }
  fs::remove_all(path_, ignored);
}

fs::path TempDir::writeFile(const fs::path& relative, const std::string& content, fs::perms mode) const {
  const fs::path file = path_ / relative;
  fs::create_directories(file.parent_path());
  std::ofstream(file, std::ios::binary) << content;
  fs::permissions(file, mode);
  return file;
}

std::string readFile(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

bool runUntil(boost::asio::io_context& io, const std::function<bool()>& done, std::chrono::milliseconds deadline) {
  const auto end = std::chrono::steady_clock::now() + deadline;
  while (!done()) {
    const auto now = std::chrono::steady_clock::now();
    if (now >= end) return false;
    if (io.stopped()) io.restart();
    // Bounded slices: the predicate may change through another thread too.
    const auto slice = std::min<std::chrono::steady_clock::duration>(end - now, 10ms);
    // Out of work, run_one_for returns at once; do not spin on it.
    if (io.run_one_for(slice) == 0 && io.stopped()) std::this_thread::sleep_for(1ms);
  }
  return true;
}

bool eventually(const std::function<bool()>& predicate, std::chrono::milliseconds deadline) {
  const auto end = std::chrono::steady_clock::now() + deadline;
  while (!predicate()) {
    if (std::chrono::steady_clock::now() >= end) return false;
    std::this_thread::sleep_for(2ms);
  }
  return true;
}

void runFor(boost::asio::io_context& io, std::chrono::milliseconds duration) {
  const auto end = std::chrono::steady_clock::now() + duration;
  while (std::chrono::steady_clock::now() < end) {
    if (io.stopped()) io.restart();
    io.run_one_until(end);
  }
}

fs::path repoDir() { return TINYFAAS_REPO; }

bool runKnownBugs() {
  const char* value = std::getenv("TINYFAAS_RUN_KNOWN_BUGS");
  return value != nullptr && *value != '\0' && std::string(value) != "0";
}

}  // namespace tinyfaas::test
