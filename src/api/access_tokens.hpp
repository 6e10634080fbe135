#pragma once
// Bearer tokens for the management API, read from a token file:
//
//   # comment
//   TOKEN TENANT ROLE
//
// one token per line, fields separated by spaces or tabs; ROLE is `admin`
// (sees and changes every function) or `tenant` (only its own). Only
// SHA-256 digests of the tokens are kept, and a lookup compares the digest
// of the presented token with every entry in constant time (nettle's
// memeql_sec, no early exit), so neither a token's contents nor its length
// leak through timing.

#include <array>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/system/result.hpp>

#include "manager/function_config.hpp"

namespace tinyfaas {

inline constexpr std::size_t kMinTokenLength = 16;

class AccessTokens {
 public:
  // `source` names the file in errors: "FILE line N: reason".
  static boost::system::result<AccessTokens, std::string> parse(std::string_view text, const std::string& source);
  static boost::system::result<AccessTokens, std::string> load(const std::filesystem::path& file);

  // The scope of `token`, or nothing when it is not in the file.
  std::optional<Scope> find(std::string_view token) const;
  std::size_t size() const { return entries_.size(); }

 private:
  using Digest = std::array<unsigned char, 32>;
  struct Entry {
    Digest digest;
    Scope scope;
  };
  static Digest digest(std::string_view token);

  std::vector<Entry> entries_;
};

// Equality of two equally long byte strings in time independent of where
// they differ.
bool constantTimeEqual(std::string_view a, std::string_view b);

}  // namespace tinyfaas
