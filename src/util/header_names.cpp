#include "util/header_names.hpp"

namespace tinyfaas {
namespace {

// RFC 9110 "tchar".
bool isTokenChar(char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  switch (c) {
    case '!':
    case '#':
    case '$':
    case '%':
    case '&':
    case '\'':
    case '*':
    case '+':
    case '-':
    case '.':
    case '^':
    case '_':
    case '`':
    case '|':
    case '~': return true;
    default: return false;
  }
}

}  // namespace

std::string canonicalHeaderName(std::string_view name) {
  std::string out;
  out.reserve(name.size());
  bool upper = true;
  for (char c : name) {
    if (!isTokenChar(c)) continue;
    if (upper && c >= 'a' && c <= 'z')
      c = static_cast<char>(c - 'a' + 'A');
    else if (!upper && c >= 'A' && c <= 'Z')
      c = static_cast<char>(c - 'A' + 'a');
    out.push_back(c);
    upper = (c == '-');
  }
  return out;
}

}  // namespace tinyfaas
