// The archive module's zip extraction (archive/archive_module.hpp).
#include <archive.h>
#include <archive_entry.h>

#include <memory>

#include "archive/archive_module.hpp"
#include "sandbox/code_permissions.hpp"

namespace tinyfaas {

namespace fs = std::filesystem;

namespace {

struct ReaderDeleter {
  void operator()(archive* a) const { archive_read_free(a); }
};
struct WriterDeleter {
  void operator()(archive* a) const { archive_write_free(a); }
};

// A symlink target is safe when, resolved lexically from the link's own
// directory, it stays inside the extraction root. libarchive's
// SECURE_SYMLINKS only refuses to write *through* existing symlinks; a link
// that points outside would still be created and could be read through later
// by the function or by our own dependency installer. This check gives the
// early, precise error; a chain of links that are each inside on their own
// is caught by symlinkEscaping() once everything is on disk.
bool symlinkStaysInside(const std::string& entryPath, const char* target) {
  if (target == nullptr || target[0] == '/' || target[0] == '\0') return false;
  fs::path resolved = (fs::path(entryPath).parent_path() / target).lexically_normal();
  const std::string s = resolved.generic_string();
  return !(s == ".." || s.rfind("../", 0) == 0);
}

// The first extracted symlink that, followed through the links it meets on
// disk, resolves outside `root` (or loops); empty when none does.
std::string symlinkEscaping(const fs::path& root) {
  std::error_code ec;
  const fs::path canonicalRoot = fs::canonical(root, ec);
  if (ec) return ".";
  for (fs::recursive_directory_iterator it(root, ec), end; !ec && it != end; it.increment(ec)) {
    if (!it->is_symlink(ec)) continue;
    const fs::path resolved = fs::weakly_canonical(it->path(), ec);
    const auto relative = resolved.lexically_relative(canonicalRoot).generic_string();
    if (ec || relative.empty() || relative == ".." || relative.rfind("../", 0) == 0)
      return it->path().lexically_relative(root).generic_string();
  }
  return ec ? "." : "";
}

// libarchive makes the folders a zip does not list (and the destination was
// made by the caller) with the umask's mode: 0700 under the unit's
// UMask=0077 would lock the function out of its own code, 0755 would show
// it to every user. Symlinks are not followed (and were checked above).
boost::system::result<void, std::string> restrictFolders(const fs::path& root) {
  std::error_code ec;
  const auto folderMode = static_cast<fs::perms>(sandbox::codeMode(true, 0));
  fs::permissions(root, folderMode, ec);
  for (fs::recursive_directory_iterator it(root, ec), end; !ec && it != end; it.increment(ec)) {
    if (it->symlink_status(ec).type() == fs::file_type::directory) fs::permissions(it->path(), folderMode, ec);
  }
  if (ec) return "cannot set the modes of the unpacked files: " + ec.message();
  return {};
}

std::string errorText(archive* a, const char* fallback) {
  const char* text = archive_error_string(a);
  return text ? text : fallback;
}

}  // namespace

boost::system::result<void, std::string> archivemodule::extractZip(std::string_view zip, const fs::path& destination,
                                                                   ExtractLimits limits) {
  std::unique_ptr<archive, ReaderDeleter> reader(archive_read_new());
  archive_read_support_format_zip(reader.get());
  if (archive_read_open_memory(reader.get(), zip.data(), zip.size()) != ARCHIVE_OK) {
    return "not a valid zip archive: " + errorText(reader.get(), "unreadable");
  }

  std::unique_ptr<archive, WriterDeleter> writer(archive_write_disk_new());
  // Refuse ".." and writing through symlinks; never restore owners (a root
  // daemon would otherwise chown to whatever the zip says). Absolute entry
  // names are refused below, before each name is prefixed with the
  // destination, which is why SECURE_NOABSOLUTEPATHS cannot be used here.
  archive_write_disk_set_options(writer.get(), ARCHIVE_EXTRACT_SECURE_NODOTDOT | ARCHIVE_EXTRACT_SECURE_SYMLINKS |
                                                   ARCHIVE_EXTRACT_PERM | ARCHIVE_EXTRACT_TIME);

  std::size_t total = 0, entries = 0;
  for (;;) {
    archive_entry* entry = nullptr;
    const int r = archive_read_next_header(reader.get(), &entry);
    if (r == ARCHIVE_EOF) break;
    if (r != ARCHIVE_OK && r != ARCHIVE_WARN)
      return "corrupt zip archive: " + errorText(reader.get(), "bad entry header");
    if (++entries > limits.maxEntries)
      return "zip archive has more than " + std::to_string(limits.maxEntries) + " entries";

    const char* rawName = archive_entry_pathname(entry);
    std::string name = rawName ? rawName : "";
    while (name.rfind("./", 0) == 0) name.erase(0, 2);
    if (name.empty()) continue;  // "./" itself
    if (name.front() == '/') return "zip entry " + name + " has an absolute path";
    for (const auto& part : fs::path(name)) {
      if (part == "..") return "zip entry " + name + " points outside the function directory";
    }
    const auto type = archive_entry_filetype(entry);
    // "." (also "./." and the like) names the destination itself: as
    // a file or symlink it would replace the function directory (found by
    // fuzz/archive_fuzzer.cpp).
    if (fs::path(name).lexically_normal() == ".") {
      if (type == AE_IFDIR) continue;
      return "zip entry " + name + " would replace the function directory";
    }
    if (type == AE_IFLNK && !symlinkStaysInside(name, archive_entry_symlink(entry)))
      return "zip entry " + name + " is a symlink pointing outside the function directory";
    if (type != AE_IFREG && type != AE_IFDIR && type != AE_IFLNK)
      return "zip entry " + name + " is not a regular file, directory or symlink";
    if (archive_entry_hardlink(entry) != nullptr) return "zip entry " + name + " is a hard link";

    archive_entry_set_perm(entry, sandbox::codeMode(type == AE_IFDIR, archive_entry_perm(entry)));
    archive_entry_set_pathname(entry, (destination / name).c_str());
    if (archive_write_header(writer.get(), entry) != ARCHIVE_OK)
      return "cannot extract " + name + ": " + errorText(writer.get(), "refused");

    const void* block = nullptr;
    size_t size = 0;
    la_int64_t offset = 0;
    for (;;) {
      const int rb = archive_read_data_block(reader.get(), &block, &size, &offset);
      if (rb == ARCHIVE_EOF) break;
      // A CRC mismatch comes back as a mere warning: a damaged file is
      // still a damaged upload.
      if (rb != ARCHIVE_OK) return "corrupt zip archive at " + name + ": " + errorText(reader.get(), "bad data");
      total += size;
      if (total > limits.maxTotalBytes)
        return "zip archive unpacks to more than " + std::to_string(limits.maxTotalBytes) + " bytes";
      if (archive_write_data_block(writer.get(), block, size, offset) != ARCHIVE_OK)
        return "cannot write " + name + ": " + errorText(writer.get(), "write failed");
    }
    if (archive_write_finish_entry(writer.get()) != ARCHIVE_OK)
      return "cannot finish " + name + ": " + errorText(writer.get(), "write failed");
  }
  if (archive_write_close(writer.get()) != ARCHIVE_OK)
    return "cannot finish extraction: " + errorText(writer.get(), "write failed");
  if (const auto escaping = symlinkEscaping(destination); !escaping.empty())
    return "zip entry " + escaping + " is a symlink pointing outside the function directory";
  return restrictFolders(destination);
}

}  // namespace tinyfaas
