// The archive module's tar writer (archive/archive_module.hpp): a runtime
// image's root file system for the Docker Engine's image import.
#include <archive.h>
#include <archive_entry.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <memory>

#include "archive/archive_module.hpp"
#include "util/read_chunks.hpp"

namespace tinyfaas {

namespace fs = std::filesystem;
using docker::RootfsEntry;

boost::system::result<std::uint64_t, std::string> archivemodule::writeTar(
    const std::map<std::string, RootfsEntry>& entries, const fs::path& file) {
  std::unique_ptr<struct archive, decltype(&archive_write_free)> tar(archive_write_new(), archive_write_free);
  if (!tar) return std::string("cannot create a tar writer");
  auto fail = [&](const std::string& what) -> std::string {
    return what + ": " + (archive_error_string(tar.get()) ? archive_error_string(tar.get()) : "unknown error");
  };
  if (archive_write_set_format_pax_restricted(tar.get()) != ARCHIVE_OK) return fail("tar format");
  if (archive_write_open_filename(tar.get(), file.c_str()) != ARCHIVE_OK) return fail("cannot write " + file.string());

  for (const auto& [path, entry] : entries) {
    if (path == "/") continue;
    std::unique_ptr<archive_entry, decltype(&archive_entry_free)> header(archive_entry_new(), archive_entry_free);
    archive_entry_set_pathname(header.get(), path.c_str() + 1);
    archive_entry_set_perm(header.get(), entry.mode);
    archive_entry_set_uid(header.get(), entry.uid);
    archive_entry_set_gid(header.get(), entry.gid);
    archive_entry_set_mtime(header.get(), entry.mtime, 0);
    std::uint64_t size = 0;
    switch (entry.type) {
      case RootfsEntry::Type::directory: archive_entry_set_filetype(header.get(), AE_IFDIR); break;
      case RootfsEntry::Type::symlink:
        archive_entry_set_filetype(header.get(), AE_IFLNK);
        archive_entry_set_symlink(header.get(), entry.linkTarget.c_str());
        break;
      case RootfsEntry::Type::file: {
        archive_entry_set_filetype(header.get(), AE_IFREG);
        if (entry.generated) {
          size = entry.content.size();
        } else {
          struct stat st {};
          if (::stat(entry.source.c_str(), &st) != 0)
            return "cannot find " + entry.source.string() + ": " + std::strerror(errno);
          size = static_cast<std::uint64_t>(st.st_size);
        }
        archive_entry_set_size(header.get(), static_cast<la_int64_t>(size));
        break;
      }
    }
    if (archive_write_header(tar.get(), header.get()) != ARCHIVE_OK) return fail("cannot add " + path);
    if (entry.type != RootfsEntry::Type::file) continue;
    if (entry.generated) {
      if (archive_write_data(tar.get(), entry.content.data(), entry.content.size()) < 0)
        return fail("cannot add " + path);
      continue;
    }
    auto copied = readChunks(entry.source, [&](std::string_view chunk) {
      return archive_write_data(tar.get(), chunk.data(), chunk.size()) >= 0;
    });
    if (!copied) return fail(copied.error());
    // The header already promised `size` bytes: a file that changed size
    // meanwhile (a package upgrade) would corrupt the archive.
    if (*copied != size) return entry.source.string() + " changed while the image was being built; try again";
  }
  if (archive_write_close(tar.get()) != ARCHIVE_OK) return fail("cannot finish " + file.string());
  std::error_code ec;
  const auto bytes = fs::file_size(file, ec);
  if (ec) return "cannot read " + file.string() + ": " + ec.message();
  return static_cast<std::uint64_t>(bytes);
}

}  // namespace tinyfaas
