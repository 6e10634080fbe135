#pragma once
// Reads what the dynamic loader needs from an ELF file: its interpreter
// (PT_INTERP), the shared libraries it names (DT_NEEDED) and where it says to
// look for them (DT_RPATH, DT_RUNPATH). Used to copy a host program with
// exactly the libraries it loads into a runtime image, without running ldd
// (which executes the program's loader) or trusting its output format.
//
// The parser takes bytes and checks every offset against them, so a
// truncated or hostile file gives an error, never a wild read.

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include <boost/system/result.hpp>

namespace tinyfaas::docker {

struct ElfInfo {
  bool is64 = true;
  bool littleEndian = true;
  std::uint16_t machine = 0;  // e_machine: libraries must match their loader's
  std::string interpreter;    // empty for shared libraries and static programs
  std::vector<std::string> needed;
  std::vector<std::string> rpath;    // DT_RPATH, split at ':'
  std::vector<std::string> runpath;  // DT_RUNPATH, split at ':'
};

// True when `bytes` starts with the ELF magic.
bool looksLikeElf(std::string_view bytes);

boost::system::result<ElfInfo, std::string> parseElf(std::string_view bytes);

// Maps the file and parses it; an error names the file.
boost::system::result<ElfInfo, std::string> readElf(const std::filesystem::path& file);

}  // namespace tinyfaas::docker
