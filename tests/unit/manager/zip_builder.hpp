#pragma once
// Builds zip archives in memory with libarchive's writer, including entries
// no well-behaved packer would make (absolute paths, "..", symlinks out,
// device nodes), to feed the extractor exactly what an attacker could.

#include <sys/types.h>

#include <string>
#include <vector>

namespace tinyfaas::test {

class ZipBuilder {
 public:
  ZipBuilder& file(std::string name, std::string content, mode_t mode = 0644);
  ZipBuilder& directory(std::string name, mode_t mode = 0755);
  ZipBuilder& symlink(std::string name, std::string target);
  ZipBuilder& hardlink(std::string name, std::string target);
  // Stored instead of deflated (so tests can find and patch bytes).
  ZipBuilder& stored(bool value = true) {
    stored_ = value;
    return *this;
  }
  std::string build() const;

 private:
  struct Entry {
    std::string name;
    std::string content;
    mode_t type;
    mode_t mode;
    std::string link;
  };
  std::vector<Entry> entries_;
  bool stored_ = false;
};

// Rewrites the Unix file type of central directory entry `index` (in the
// external attributes), e.g. to S_IFCHR: libarchive's writer refuses to make
// such entries, but a hand-made zip can carry them.
std::string withFileType(std::string zip, std::size_t index, mode_t type);

}  // namespace tinyfaas::test
