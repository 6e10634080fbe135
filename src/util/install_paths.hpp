#pragma once
// Where tinyfaas finds the files it ships beside its binary: an installed
// tree (bin/ next to lib/ and share/) wins over the build and source trees
// the binary came from.

#include <filesystem>
#include <initializer_list>

namespace tinyfaas {

// The folder of the running executable; empty if it cannot be read.
std::filesystem::path executableDir();

// The first candidate that exists, or an empty path.
std::filesystem::path firstExisting(std::initializer_list<std::filesystem::path> candidates);

}  // namespace tinyfaas
