#include "api/access_tokens.hpp"

#include <cstdint>
#include <fstream>
#include <sstream>

#include <nettle/memops.h>
#include <nettle/sha2.h>

namespace tinyfaas {

namespace {

std::vector<std::string_view> fields(std::string_view line) {
  std::vector<std::string_view> out;
  std::size_t i = 0;
  while (i < line.size()) {
    i = line.find_first_not_of(" \t", i);
    if (i == std::string_view::npos) break;
    std::size_t end = line.find_first_of(" \t", i);
    if (end == std::string_view::npos) end = line.size();
    out.push_back(line.substr(i, end - i));
    i = end;
  }
  return out;
}

// RFC 6750's b64token: what fits in `Authorization: Bearer ...`.
bool isTokenChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         std::string_view("-._~+/=").find(c) != std::string_view::npos;
}

bool isTenantName(std::string_view name) {
  if (name.empty() || name.size() > 64) return false;
  for (char c : name) {
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_'))
      return false;
  }
  return true;
}

}  // namespace

bool constantTimeEqual(std::string_view a, std::string_view b) {
  return a.size() == b.size() && memeql_sec(a.data(), b.data(), a.size()) != 0;
}

AccessTokens::Digest AccessTokens::digest(std::string_view token) {
  static_assert(std::tuple_size_v<Digest> == SHA256_DIGEST_SIZE);
  sha256_ctx ctx;
  sha256_init(&ctx);
  sha256_update(&ctx, token.size(), reinterpret_cast<const std::uint8_t*>(token.data()));
  Digest out;
  sha256_digest(&ctx, out.size(), out.data());
  return out;
}

boost::system::result<AccessTokens, std::string> AccessTokens::parse(std::string_view text, const std::string& source) {
  AccessTokens tokens;
  std::size_t lineNumber = 0;
  while (!text.empty()) {
    ++lineNumber;
    std::size_t end = text.find('\n');
    std::string_view line = text.substr(0, end);
    text = end == std::string_view::npos ? std::string_view{} : text.substr(end + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    // Errors quote the tenant and role, never the token itself.
    auto error = [&](const std::string& reason) {
      return source + " line " + std::to_string(lineNumber) + ": " + reason;
    };
    auto parts = fields(line);
    if (parts.empty() || parts.front().front() == '#') continue;
    if (parts.size() != 3)
      return error("expected TOKEN TENANT ROLE, found " + std::to_string(parts.size()) + " field(s)");
    const auto token = parts[0];
    const auto tenant = parts[1];
    const auto role = parts[2];
    for (char c : token) {
      if (!isTokenChar(c)) return error("the token may hold only letters, digits and -._~+/=");
    }
    if (token.size() < kMinTokenLength)
      return error("the token is shorter than " + std::to_string(kMinTokenLength) + " characters");
    if (!isTenantName(tenant)) return error("tenant must be 1 to 64 letters, digits, - or _");
    if (role != "admin" && role != "tenant")
      return error("role must be admin or tenant, not \"" + std::string(role) + "\"");
    Entry entry{digest(token), Scope{std::string(tenant), role == "admin"}};
    for (const auto& other : tokens.entries_) {
      if (other.digest == entry.digest) return error("the same token appears on an earlier line");
    }
    tokens.entries_.push_back(std::move(entry));
  }
  if (tokens.entries_.empty()) return source + ": no tokens (nobody could use the management API)";
  return tokens;
}

boost::system::result<AccessTokens, std::string> AccessTokens::load(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) return "cannot read token file " + file.string();
  std::stringstream text;
  text << in.rdbuf();
  return parse(text.str(), file.string());
}

std::optional<Scope> AccessTokens::find(std::string_view token) const {
  const Digest presented = digest(token);
  const std::string_view presentedView(reinterpret_cast<const char*>(presented.data()), presented.size());
  const Entry* match = nullptr;
  for (const auto& entry : entries_) {
    const std::string_view stored(reinterpret_cast<const char*>(entry.digest.data()), entry.digest.size());
    if (constantTimeEqual(presentedView, stored)) match = &entry;
  }
  if (!match) return std::nullopt;
  return match->scope;
}

}  // namespace tinyfaas
