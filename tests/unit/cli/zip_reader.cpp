#include "zip_reader.hpp"

#include <archive.h>
#include <archive_entry.h>

#include <memory>
#include <stdexcept>

namespace tinyfaas::cli::test {

std::vector<ZipEntry> readZip(const std::string& zip) {
  std::unique_ptr<archive, decltype(&archive_read_free)> reader(archive_read_new(), archive_read_free);
  archive_read_support_format_zip(reader.get());
  if (archive_read_open_memory(reader.get(), zip.data(), zip.size()) != ARCHIVE_OK) {
    throw std::runtime_error(std::string("not a zip: ") + archive_error_string(reader.get()));
  }
  std::vector<ZipEntry> entries;
  archive_entry* entry = nullptr;
  int rc = 0;
  while ((rc = archive_read_next_header(reader.get(), &entry)) == ARCHIVE_OK) {
    ZipEntry e;
    e.name = archive_entry_pathname(entry);
    e.mode = archive_entry_perm(entry);
    e.directory = archive_entry_filetype(entry) == AE_IFDIR;
    char buffer[4096];
    la_ssize_t got = 0;
    while ((got = archive_read_data(reader.get(), buffer, sizeof buffer)) > 0) {
      e.content.append(buffer, static_cast<size_t>(got));
    }
    if (got < 0) throw std::runtime_error(std::string("bad entry data: ") + archive_error_string(reader.get()));
    entries.push_back(std::move(e));
  }
  if (rc != ARCHIVE_EOF) throw std::runtime_error(std::string("bad zip: ") + archive_error_string(reader.get()));
  return entries;
}

}  // namespace tinyfaas::cli::test
