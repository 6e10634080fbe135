#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace tinyfaas {

// Standard alphabet with padding (what `base64` and Go's StdEncoding write).
// Line breaks and spaces are ignored; anything else malformed gives nullopt.
std::optional<std::string> decodeBase64(std::string_view text);
std::string encodeBase64(std::string_view data);

}  // namespace tinyfaas
