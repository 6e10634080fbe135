#pragma once

#include <string_view>

namespace tinyfaas {

// Upstream tinyFaaS allows letters and digits only; the name becomes a URL
// path segment, a directory name and a container label, so nothing else is
// safe everywhere.
inline constexpr std::size_t kMaxFunctionNameLength = 64;

constexpr bool isValidFunctionName(std::string_view name) {
  if (name.empty() || name.size() > kMaxFunctionNameLength) return false;
  for (char c : name) {
    const bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    if (!alnum) return false;
  }
  return true;
}

}  // namespace tinyfaas
