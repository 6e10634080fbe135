#include "proxy/function_answer.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <string_view>

#include "util/header_names.hpp"

namespace tinyfaas {

namespace {

bool isTokenChar(unsigned char c) {
  return std::isalnum(c) || std::string_view("!#$%&'*+-.^_`|~").find(static_cast<char>(c)) != std::string_view::npos;
}

bool equalsIgnoreCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

// These describe the connection to the handler, or are the frontends' to
// set; a handler's HTTP server adds some of them on its own (Node: Date,
// Connection, Keep-Alive).
bool isConnectionHeader(std::string_view name) {
  constexpr std::array<std::string_view, 9> kDropped{"Connection",        "Keep-Alive",     "Proxy-Connection",
                                                     "Transfer-Encoding", "Content-Length", "TE",
                                                     "Trailer",           "Upgrade",        "Date"};
  return std::any_of(kDropped.begin(), kDropped.end(), [&](std::string_view d) { return equalsIgnoreCase(d, name); });
}

CallResult failed(std::string reason) { return CallResult{CallStatus::functionError, std::move(reason)}; }

}  // namespace

CallResult functionHeadersTooLarge() {
  return failed("function response headers exceed the limit (" + std::to_string(kMaxFunctionHeaders) + " headers, " +
                std::to_string(kMaxFunctionHeaderBytes >> 10) + " KiB)");
}

CallResult functionAnswer(unsigned status, HeaderList headers, std::string body) {
  if (status < 200 || status > 599)
    return failed("function answered status " + std::to_string(status) + "; a function may answer 200 to 599");
  HeaderList kept;
  std::size_t bytes = 0;
  for (auto& [name, value] : headers) {
    if (name.empty() || !std::all_of(name.begin(), name.end(), [](char c) { return isTokenChar(c); })) continue;
    if (isConnectionHeader(name)) continue;
    // A CR or LF would end the header line and start one the function made up.
    std::erase_if(value, [](char c) { return (static_cast<unsigned char>(c) < 0x20 && c != '\t') || c == 0x7f; });
    bytes += name.size() + value.size();
    if (kept.size() == kMaxFunctionHeaders || bytes > kMaxFunctionHeaderBytes) return functionHeadersTooLarge();
    kept.emplace_back(canonicalHeaderName(name), std::move(value));
  }
  CallResult result{status < 500 ? CallStatus::ok : CallStatus::functionError, std::move(body)};
  if (result.status == CallStatus::functionError && result.body.empty())
    result.body = "function failed with status " + std::to_string(status);
  result.code = status;
  result.headers = std::move(kept);
  return result;
}

}  // namespace tinyfaas
