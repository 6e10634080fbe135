#include "zip_builder.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <sys/stat.h>

#include <cstring>
#include <stdexcept>

namespace tinyfaas::test {

ZipBuilder& ZipBuilder::file(std::string name, std::string content, mode_t mode) {
  entries_.push_back({std::move(name), std::move(content), AE_IFREG, mode, {}});
  return *this;
}

ZipBuilder& ZipBuilder::directory(std::string name, mode_t mode) {
  entries_.push_back({std::move(name), {}, AE_IFDIR, mode, {}});
  return *this;
}

ZipBuilder& ZipBuilder::symlink(std::string name, std::string target) {
  entries_.push_back({std::move(name), {}, AE_IFLNK, 0777, std::move(target)});
  return *this;
}

ZipBuilder& ZipBuilder::hardlink(std::string name, std::string target) {
  entries_.push_back({std::move(name), {}, AE_IFREG, 0644, std::move(target)});
  return *this;
}

namespace {

la_ssize_t appendTo(archive*, void* out, const void* buffer, size_t length) {
  static_cast<std::string*>(out)->append(static_cast<const char*>(buffer), length);
  return static_cast<la_ssize_t>(length);
}

}  // namespace

std::string ZipBuilder::build() const {
  std::string out;
  archive* writer = archive_write_new();
  archive_write_set_format_zip(writer);
  if (stored_) archive_write_set_format_option(writer, "zip", "compression", "store");
  // The default pads to 10 KiB blocks; a zip must end at its central directory.
  archive_write_set_bytes_in_last_block(writer, 1);
  if (archive_write_open(writer, &out, nullptr, appendTo, nullptr) != ARCHIVE_OK)
    throw std::runtime_error(archive_error_string(writer));
  for (const auto& e : entries_) {
    archive_entry* entry = archive_entry_new();
    archive_entry_set_pathname(entry, e.name.c_str());
    archive_entry_set_filetype(entry, e.type);
    archive_entry_set_perm(entry, e.mode);
    archive_entry_set_mtime(entry, 1700000000, 0);
    if (e.type == AE_IFLNK) archive_entry_set_symlink(entry, e.link.c_str());
    if (e.type == AE_IFREG && !e.link.empty()) archive_entry_set_hardlink(entry, e.link.c_str());
    archive_entry_set_size(entry, static_cast<la_int64_t>(e.content.size()));
    const int r = archive_write_header(writer, entry);
    if (r < ARCHIVE_WARN) {
      const std::string error = archive_error_string(writer);
      archive_entry_free(entry);
      archive_write_free(writer);
      throw std::runtime_error("cannot add " + e.name + ": " + error);
    }
    if (!e.content.empty()) archive_write_data(writer, e.content.data(), e.content.size());
    archive_entry_free(entry);
  }
  archive_write_close(writer);
  archive_write_free(writer);
  return out;
}

std::string withFileType(std::string zip, std::size_t index, mode_t type) {
  static constexpr char kCentral[] = {'P', 'K', 1, 2};
  std::size_t at = 0;
  for (std::size_t i = 0;; ++i) {
    at = zip.find(std::string(kCentral, 4), at);
    if (at == std::string::npos) throw std::runtime_error("no such central directory entry");
    if (i == index) break;
    at += 4;
  }
  // External attributes: 4 bytes at offset 38, the Unix mode in the high half.
  unsigned char* attributes = reinterpret_cast<unsigned char*>(zip.data() + at + 38);
  std::uint32_t value = 0;
  for (int b = 3; b >= 0; --b) value = (value << 8) | attributes[b];
  std::uint32_t mode = value >> 16;
  mode = (mode & 07777) | type;
  value = (value & 0xffff) | (mode << 16);
  for (int b = 0; b < 4; ++b) attributes[b] = static_cast<unsigned char>(value >> (8 * b));
  zip[at + 5] = 3;  // "made by" Unix, or the mode is ignored
  return zip;
}

}  // namespace tinyfaas::test
