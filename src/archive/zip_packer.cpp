// The archive module's zip packing (archive/archive_module.hpp) for
// `tinyfaas deploy`.
#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <fstream>
#include <memory>
#include <set>
#include <sstream>
#include <string_view>
#include <system_error>
#include <vector>

#include "archive/archive_module.hpp"
#include "archive/ignore_rules.hpp"
#include "util/unique_fd.hpp"

namespace tinyfaas::cli {
namespace {

namespace fs = std::filesystem;

struct ArchiveDeleter {
  void operator()(archive* a) const { archive_write_free(a); }
};
struct EntryDeleter {
  void operator()(archive_entry* e) const { archive_entry_free(e); }
};
using ArchivePtr = std::unique_ptr<archive, ArchiveDeleter>;
using EntryPtr = std::unique_ptr<archive_entry, EntryDeleter>;

la_ssize_t appendToString(archive*, void* clientData, const void* buffer, size_t length) {
  static_cast<std::string*>(clientData)->append(static_cast<const char*>(buffer), length);
  return static_cast<la_ssize_t>(length);
}

std::string errnoText(int error) { return std::error_code(error, std::generic_category()).message(); }

class Packer {
 public:
  Packer(ArchivePtr writer, IgnoreRules rules) : writer_(std::move(writer)), rules_(std::move(rules)) {}

  Result<void> addDirectoryContents(const fs::path& dir, const std::string& prefix) {
    std::error_code ec;
    // Seen by identity, not path, so a symlink back up the tree cannot loop.
    struct stat dirStat {};
    if (::stat(dir.c_str(), &dirStat) != 0) return failure(cannotRead(dir, errnoText(errno)));
    if (!visited_.emplace(dirStat.st_dev, dirStat.st_ino).second) return {};

    std::vector<fs::path> children;
    fs::directory_iterator it(dir, ec);
    if (ec) return failure(cannotRead(dir, ec.message()));
    for (; it != fs::directory_iterator(); it.increment(ec)) {
      if (ec) return failure(cannotRead(dir, ec.message()));
      children.push_back(it->path());
    }
    if (ec) return failure(cannotRead(dir, ec.message()));
    std::sort(children.begin(), children.end());

    for (const auto& child : children) {
      const std::string name = child.filename().string();
      if (prefix.empty() && name == kIgnoreFileName) continue;
      struct stat st {};
      if (::stat(child.c_str(), &st) != 0) {
        const int error = errno;
        if (error == ENOENT) return failure(cannotRead(child, "dangling symlink"));
        return failure(cannotRead(child, errnoText(error)));
      }
      const std::string entryName = prefix + name;
      if (rules_.ignores(entryName, S_ISDIR(st.st_mode))) {
        leftOut_.push_back(S_ISDIR(st.st_mode) ? entryName + "/" : entryName);
        continue;
      }
      if (S_ISDIR(st.st_mode)) {
        if (auto r = writeHeader(entryName + "/", st, AE_IFDIR, 0); !r) return r;
        if (auto r = addDirectoryContents(child, entryName + "/"); !r) return r;
      } else if (S_ISREG(st.st_mode)) {
        if (auto r = addFile(child, entryName, st); !r) return r;
      }
      // Sockets, FIFOs and devices have no content a function could use.
    }
    return {};
  }

  std::size_t files() const { return files_; }
  std::vector<std::string> takeLeftOut() { return std::move(leftOut_); }

  Result<void> finish() {
    if (archive_write_close(writer_.get()) != ARCHIVE_OK) return failure(archiveError());
    return {};
  }

 private:
  Result<void> writeHeader(const std::string& entryName, const struct stat& st, unsigned type, la_int64_t size) {
    EntryPtr entry(archive_entry_new());
    archive_entry_set_pathname(entry.get(), entryName.c_str());
    archive_entry_set_filetype(entry.get(), type);
    archive_entry_set_perm(entry.get(), st.st_mode & 07777);
    archive_entry_set_size(entry.get(), size);
    archive_entry_set_mtime(entry.get(), st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
    if (archive_write_header(writer_.get(), entry.get()) != ARCHIVE_OK) return failure(archiveError());
    return {};
  }

  Result<void> addFile(const fs::path& path, const std::string& entryName, const struct stat& st) {
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (fd.get() < 0) return failure(cannotRead(path, errnoText(errno)));
    if (auto r = writeHeader(entryName, st, AE_IFREG, st.st_size); !r) return r;
    // The header promised st_size bytes; a file that changes size meanwhile
    // would corrupt the entry, so write exactly that many or fail.
    std::vector<char> buffer(64 * 1024);
    la_int64_t remaining = st.st_size;
    while (remaining > 0) {
      const auto want = static_cast<size_t>(std::min<la_int64_t>(remaining, static_cast<la_int64_t>(buffer.size())));
      const ssize_t got = ::read(fd.get(), buffer.data(), want);
      if (got < 0) {
        if (errno == EINTR) continue;
        return failure(cannotRead(path, errnoText(errno)));
      }
      if (got == 0) return failure(cannotRead(path, "file shrank while it was being packed"));
      if (archive_write_data(writer_.get(), buffer.data(), static_cast<size_t>(got)) < 0) {
        return failure(archiveError());
      }
      remaining -= got;
    }
    ++files_;
    return {};
  }

  std::string cannotRead(const fs::path& path, const std::string& why) const {
    return "cannot read " + path.string() + ": " + why;
  }

  std::string archiveError() const {
    const char* text = archive_error_string(writer_.get());
    return std::string("cannot build the zip: ") + (text != nullptr ? text : "libarchive failed");
  }

  ArchivePtr writer_;
  IgnoreRules rules_;
  std::vector<std::string> leftOut_;
  std::set<std::pair<dev_t, ino_t>> visited_;
  std::size_t files_ = 0;
};

// The folder's .tinyfaasignore; none is no rules.
Result<IgnoreRules> readIgnoreRules(const fs::path& dir) {
  const fs::path file = dir / kIgnoreFileName;
  std::error_code ec;
  if (!fs::exists(file, ec)) return IgnoreRules{};
  std::ifstream in(file, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  if (!in || in.bad()) return failure("cannot read " + file.string() + ": " + errnoText(errno));
  return IgnoreRules::parse(text.str());
}

}  // namespace
}  // namespace tinyfaas::cli

namespace tinyfaas {

cli::Result<cli::PackedFunction> archivemodule::packFunctionDirectory(const std::filesystem::path& dir) {
  using namespace cli;  // Result, failure and the packer above
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    return failure(dir.string() + ": " + (ec ? ec.message() : std::string("not a directory")));
  }
  // The archive writes through the callback into `zip`, which must outlive it.
  auto zip = std::make_unique<std::string>();
  ArchivePtr writer(archive_write_new());
  if (!writer) return failure(std::string("cannot build the zip: out of memory"));
  // Unblocked output: libarchive would otherwise pad the last block with
  // zeros after the zip's end record, which strict unzippers reject.
  if (archive_write_set_format_zip(writer.get()) != ARCHIVE_OK ||
      archive_write_set_bytes_per_block(writer.get(), 0) != ARCHIVE_OK ||
      archive_write_open2(writer.get(), zip.get(), nullptr, appendToString, nullptr, nullptr) != ARCHIVE_OK) {
    const char* text = archive_error_string(writer.get());
    return failure(std::string("cannot build the zip: ") + (text != nullptr ? text : "libarchive failed"));
  }
  auto rules = readIgnoreRules(dir);
  if (!rules) return failure(rules.error());
  Packer packer(std::move(writer), std::move(*rules));
  if (auto r = packer.addDirectoryContents(dir, ""); !r) return failure(r.error());
  if (auto r = packer.finish(); !r) return failure(r.error());
  return PackedFunction{std::move(*zip), packer.files(), packer.takeLeftOut()};
}

}  // namespace tinyfaas
