#pragma once
// RFC 4648 base64 (standard alphabet, with padding): the management API wants
// the function's zip as a base64 string inside the JSON body, as upstream's
// `base64` shell step produced it.

#include <optional>
#include <string>
#include <string_view>

namespace tinyfaas::cli {

std::string base64Encode(std::string_view bytes);

// Strict: rejects characters outside the alphabet, bad padding and lengths
// that are not a multiple of four. Tests use it to read uploads back.
std::optional<std::string> base64Decode(std::string_view text);

}  // namespace tinyfaas::cli
