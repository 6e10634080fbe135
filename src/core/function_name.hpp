#pragma once

#include <string_view>

namespace tinyfaas {

// Letters and digits as upstream tinyFaaS, plus `-` inside a name as
// faas-cli users write it (`my-func`). The name becomes a URL and CoAP path
// segment, a directory and log file name, a container, network and cgroup
// name and a label value, where all of these are safe; a leading `-` would
// read as an option in tools, a trailing one looks like a cut-off name.
inline constexpr std::size_t kMaxFunctionNameLength = 64;
inline constexpr std::string_view kFunctionNameRule =
    "1 to 64 letters, digits and -, starting and ending with a letter or digit";

constexpr bool isValidFunctionName(std::string_view name) {
  if (name.empty() || name.size() > kMaxFunctionNameLength) return false;
  if (name.front() == '-' || name.back() == '-') return false;
  for (char c : name) {
    const bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    if (!alnum && c != '-') return false;
  }
  return true;
}

}  // namespace tinyfaas
