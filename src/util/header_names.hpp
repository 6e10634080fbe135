#pragma once

#include <string>
#include <string_view>

namespace tinyfaas {

// The spelling upstream's Go proxy gives header names (textproto's canonical
// form): "user-agent" -> "User-Agent", "lab" -> "Lab". Characters that may not
// appear in an HTTP token are dropped. Returns an empty string when nothing
// legal is left.
std::string canonicalHeaderName(std::string_view name);

}  // namespace tinyfaas
