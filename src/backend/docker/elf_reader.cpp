#include "backend/docker/elf_reader.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <optional>

namespace tinyfaas::docker {

namespace {

constexpr std::uint32_t kPtLoad = 1;
constexpr std::uint32_t kPtDynamic = 2;
constexpr std::uint32_t kPtInterp = 3;
constexpr std::uint64_t kDtNull = 0;
constexpr std::uint64_t kDtNeeded = 1;
constexpr std::uint64_t kDtStrtab = 5;
constexpr std::uint64_t kDtStrsz = 10;
constexpr std::uint64_t kDtRpath = 15;
constexpr std::uint64_t kDtRunpath = 29;
// Far more than any real program has; bounds the work on a hostile file.
constexpr std::size_t kMaxProgramHeaders = 4096;
constexpr std::size_t kMaxDynamicEntries = 65536;

class Reader {
 public:
  Reader(std::string_view bytes, bool little) : bytes_(bytes), little_(little) {}

  template <class T>
  std::optional<T> read(std::uint64_t offset) const {
    if (offset > bytes_.size() || bytes_.size() - offset < sizeof(T)) return std::nullopt;
    unsigned char raw[sizeof(T)];
    std::memcpy(raw, bytes_.data() + offset, sizeof(T));
    T value = 0;
    for (std::size_t i = 0; i < sizeof(T); ++i) {
      const std::size_t shift = little_ ? i : sizeof(T) - 1 - i;
      value |= static_cast<T>(static_cast<T>(raw[i]) << (8 * shift));
    }
    return value;
  }

  // A NUL-terminated string inside [offset, limit).
  std::optional<std::string> string(std::uint64_t offset, std::uint64_t limit) const {
    limit = std::min<std::uint64_t>(limit, bytes_.size());
    if (offset >= limit) return std::nullopt;
    const char* begin = bytes_.data() + offset;
    const void* nul = std::memchr(begin, '\0', limit - offset);
    if (nul == nullptr) return std::nullopt;
    return std::string(begin, static_cast<const char*>(nul));
  }

 private:
  std::string_view bytes_;
  bool little_;
};

struct Segment {
  std::uint32_t type;
  std::uint64_t offset, vaddr, filesz;
};

std::vector<std::string> splitPath(const std::string& list) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start <= list.size()) {
    const auto colon = list.find(':', start);
    const auto end = colon == std::string::npos ? list.size() : colon;
    if (end > start) out.push_back(list.substr(start, end - start));
    if (colon == std::string::npos) break;
    start = colon + 1;
  }
  return out;
}

}  // namespace

bool looksLikeElf(std::string_view bytes) {
  return bytes.size() >= 4 && bytes.substr(0, 4) ==
                                  "\x7f"
                                  "ELF";
}

boost::system::result<ElfInfo, std::string> parseElf(std::string_view bytes) {
  if (!looksLikeElf(bytes)) return std::string("not an ELF file");
  if (bytes.size() < 52) return std::string("truncated ELF header");
  ElfInfo info;
  const auto cls = static_cast<unsigned char>(bytes[4]);
  const auto data = static_cast<unsigned char>(bytes[5]);
  if (cls != 1 && cls != 2) return std::string("unknown ELF class");
  if (data != 1 && data != 2) return std::string("unknown ELF byte order");
  info.is64 = cls == 2;
  info.littleEndian = data == 1;
  Reader r(bytes, info.littleEndian);

  const auto machine = r.read<std::uint16_t>(18);
  std::optional<std::uint64_t> phoff;
  std::optional<std::uint16_t> phentsize, phnum;
  if (info.is64) {
    phoff = r.read<std::uint64_t>(32);
    phentsize = r.read<std::uint16_t>(54);
    phnum = r.read<std::uint16_t>(56);
  } else {
    if (auto off = r.read<std::uint32_t>(28)) phoff = *off;
    phentsize = r.read<std::uint16_t>(42);
    phnum = r.read<std::uint16_t>(44);
  }
  if (!machine || !phoff || !phentsize || !phnum) return std::string("truncated ELF header");
  info.machine = *machine;
  const std::size_t minEntry = info.is64 ? 56 : 32;
  if (*phnum > 0 && *phentsize < minEntry) return std::string("bad program header size");
  if (*phnum > kMaxProgramHeaders) return std::string("too many program headers");

  std::vector<Segment> segments;
  for (std::uint64_t i = 0; i < *phnum; ++i) {
    const std::uint64_t at = *phoff + i * *phentsize;
    Segment s{};
    std::optional<std::uint32_t> type = r.read<std::uint32_t>(at);
    std::optional<std::uint64_t> offset, vaddr, filesz;
    if (info.is64) {
      offset = r.read<std::uint64_t>(at + 8);
      vaddr = r.read<std::uint64_t>(at + 16);
      filesz = r.read<std::uint64_t>(at + 32);
    } else {
      if (auto v = r.read<std::uint32_t>(at + 4)) offset = *v;
      if (auto v = r.read<std::uint32_t>(at + 8)) vaddr = *v;
      if (auto v = r.read<std::uint32_t>(at + 16)) filesz = *v;
    }
    if (!type || !offset || !vaddr || !filesz) return std::string("truncated program headers");
    s.type = *type;
    s.offset = *offset;
    s.vaddr = *vaddr;
    s.filesz = *filesz;
    segments.push_back(s);
  }

  const Segment* dynamic = nullptr;
  for (const auto& s : segments) {
    if (s.type == kPtInterp) {
      auto interp = r.string(s.offset, s.offset + s.filesz);
      if (!interp) return std::string("bad PT_INTERP");
      info.interpreter = *interp;
    } else if (s.type == kPtDynamic) {
      dynamic = &s;
    }
  }
  if (dynamic == nullptr) return info;  // static: needs nothing

  // Dynamic entries hold virtual addresses; PT_LOAD segments map them to file offsets.
  auto fileOffset = [&](std::uint64_t vaddr) -> std::optional<std::uint64_t> {
    for (const auto& s : segments) {
      if (s.type == kPtLoad && vaddr >= s.vaddr && vaddr - s.vaddr < s.filesz) return s.offset + (vaddr - s.vaddr);
    }
    return std::nullopt;
  };

  const std::size_t entrySize = info.is64 ? 16 : 8;
  std::optional<std::uint64_t> strtab, strsz;
  struct Ref {
    std::uint64_t tag, value;
  };
  std::vector<Ref> refs;
  const std::uint64_t count = std::min<std::uint64_t>(dynamic->filesz / entrySize, kMaxDynamicEntries);
  for (std::uint64_t i = 0; i < count; ++i) {
    const std::uint64_t at = dynamic->offset + i * entrySize;
    std::optional<std::uint64_t> tag, value;
    if (info.is64) {
      tag = r.read<std::uint64_t>(at);
      value = r.read<std::uint64_t>(at + 8);
    } else {
      if (auto v = r.read<std::uint32_t>(at)) tag = *v;
      if (auto v = r.read<std::uint32_t>(at + 4)) value = *v;
    }
    if (!tag || !value) return std::string("truncated dynamic section");
    if (*tag == kDtNull) break;
    if (*tag == kDtStrtab)
      strtab = *value;
    else if (*tag == kDtStrsz)
      strsz = *value;
    else if (*tag == kDtNeeded || *tag == kDtRpath || *tag == kDtRunpath)
      refs.push_back({*tag, *value});
  }
  if (refs.empty()) return info;
  if (!strtab || !strsz) return std::string("dynamic section without a string table");
  auto strtabOffset = fileOffset(*strtab);
  if (!strtabOffset) return std::string("string table outside the file");
  const std::uint64_t strtabEnd = *strtabOffset + *strsz;
  for (const auto& ref : refs) {
    if (ref.value >= *strsz) return std::string("dynamic string out of range");
    auto text = r.string(*strtabOffset + ref.value, strtabEnd);
    if (!text) return std::string("unterminated dynamic string");
    if (ref.tag == kDtNeeded)
      info.needed.push_back(*text);
    else if (ref.tag == kDtRpath)
      info.rpath = splitPath(*text);
    else
      info.runpath = splitPath(*text);
  }
  return info;
}

boost::system::result<ElfInfo, std::string> readElf(const std::filesystem::path& file) {
  const int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return "cannot open " + file.string() + ": " + std::strerror(errno);
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return file.string() + " is not a regular file";
  }
  if (st.st_size == 0) {
    ::close(fd);
    return file.string() + ": not an ELF file";
  }
  void* map = ::mmap(nullptr, static_cast<std::size_t>(st.st_size), PROT_READ, MAP_PRIVATE, fd, 0);
  ::close(fd);
  if (map == MAP_FAILED) return "cannot map " + file.string() + ": " + std::strerror(errno);
  auto parsed = parseElf(std::string_view(static_cast<const char*>(map), static_cast<std::size_t>(st.st_size)));
  ::munmap(map, static_cast<std::size_t>(st.st_size));
  if (!parsed) return file.string() + ": " + parsed.error();
  return parsed;
}

}  // namespace tinyfaas::docker
