#include "cli/reply_text.hpp"

namespace tinyfaas::cli {

std::string statusLine(unsigned status, std::string_view reason, std::string_view body) {
  std::string statusText = std::to_string(status);
  if (!reason.empty()) statusText += " " + std::string(reason);
  return statusLine(statusText, body);
}

std::string statusLine(std::string_view status, std::string_view body) {
  while (!body.empty() && (body.back() == '\n' || body.back() == '\r')) body.remove_suffix(1);
  std::string line(status);
  if (!body.empty()) line += ": " + std::string(body);
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
