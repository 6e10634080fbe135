#include "util/base64.hpp"

#include <boost/beast/core/detail/base64.hpp>

namespace tinyfaas {

namespace base64 = boost::beast::detail::base64;

std::optional<std::string> decodeBase64(std::string_view text) {
  std::string compact;
  compact.reserve(text.size());
  for (char c : text) {
    if (c != '\n' && c != '\r' && c != ' ' && c != '\t') compact.push_back(c);
  }
  if (compact.size() % 4 != 0) return std::nullopt;
  std::size_t padding = 0;
  while (padding < 2 && padding < compact.size() && compact[compact.size() - 1 - padding] == '=') ++padding;
  std::string out(base64::decoded_size(compact.size()), '\0');
  // Beast's decoder stops at the first character outside the alphabet; all
  // of the input must have been consumed for it to be valid.
  auto [written, read] = base64::decode(out.data(), compact.data(), compact.size());
  if (read + padding != compact.size()) return std::nullopt;
  out.resize(written);
  return out;
}

std::string encodeBase64(std::string_view data) {
  std::string out(base64::encoded_size(data.size()), '\0');
  out.resize(base64::encode(out.data(), data.data(), data.size()));
  return out;
}

}  // namespace tinyfaas
