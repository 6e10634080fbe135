#pragma once
// Reads a zip back with libarchive, to check what the packer wrote.

#include <string>
#include <vector>

namespace tinyfaas::cli::test {

struct ZipEntry {
  std::string name;
  unsigned mode = 0;  // permission bits only
  bool directory = false;
  std::string content;
};

// Throws std::runtime_error if `zip` is not a readable zip.
std::vector<ZipEntry> readZip(const std::string& zip);

}  // namespace tinyfaas::cli::test
