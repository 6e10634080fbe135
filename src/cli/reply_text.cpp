#include "cli/reply_text.hpp"

namespace tinyfaas::cli {

std::string statusLine(unsigned status, std::string_view reason, std::string_view body) {
  std::string statusText = std::to_string(status);
  if (!reason.empty()) statusText += " " + std::string(reason);
  return statusLine(statusText, body);
}

std::string statusLine(std::string_view status, std::string_view body) {
  constexpr std::size_t kMaxBodyShown = 2000;
  while (!body.empty() && (body.back() == '\n' || body.back() == '\r')) body.remove_suffix(1);
  std::string line(status);
  if (body.empty()) return line;
  line += ": ";
  const std::string_view shown = body.substr(0, kMaxBodyShown);
  for (const char c : shown) {
    const auto byte = static_cast<unsigned char>(c);
    if (c == '\n') {
      line += "\\n";
    } else if (c == '\r') {
      line += "\\r";
    } else if ((byte < 0x20 && c != '\t') || byte == 0x7F) {
      constexpr char kHex[] = "0123456789abcdef";
      line += "\\x";
      line += kHex[byte >> 4];
      line += kHex[byte & 0xF];
    } else {
      line += c;
    }
  }
  if (shown.size() < body.size()) line += " ... (" + std::to_string(body.size() - shown.size()) + " more bytes)";
  return line;
}

void printBody(std::ostream& out, std::string_view body, bool outIsTerminal) {
  out.write(body.data(), static_cast<std::streamsize>(body.size()));
  if (outIsTerminal && !body.empty() && body.back() != '\n') out << '\n';
  out.flush();
}

void printLines(std::ostream& out, std::string_view text) {
  out.write(text.data(), static_cast<std::streamsize>(text.size()));
  if (!text.empty() && text.back() != '\n') out << '\n';
  out.flush();
}

}  // namespace tinyfaas::cli
