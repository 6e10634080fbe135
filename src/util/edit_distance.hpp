#pragma once

#include <cstddef>
#include <string_view>

namespace tinyfaas {

// Levenshtein distance, for "did you mean" suggestions (misspelt upload
// fields, mistyped CLI subcommands).
std::size_t editDistance(std::string_view a, std::string_view b);

}  // namespace tinyfaas
