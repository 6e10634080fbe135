#pragma once

#include <filesystem>
#include <string>

namespace tinyfaas::cli::test {

// A fresh directory under $TMPDIR, removed with everything in it.
class TempDir {
 public:
  TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir();

  const std::filesystem::path& path() const { return path_; }

  // Creates `relative` (and its parents) with `content` and permission bits `mode`.
  void writeFile(const std::string& relative, const std::string& content, std::filesystem::perms mode =
                                                                              std::filesystem::perms(0644)) const;

 private:
  std::filesystem::path path_;
};

}  // namespace tinyfaas::cli::test
