#pragma once
// The patterns of a `.tinyfaasignore` file, in gitignore syntax: one pattern
// a line, `#` comments, `!` re-includes, a trailing `/` matches folders only,
// a `/` at the start or inside anchors the pattern at the function folder
// (else it matches a name at any depth), `*` `?` `[...]` match within one
// path segment and `**` across segments. The last matching pattern decides.

#include <string>
#include <string_view>
#include <vector>

namespace tinyfaas::cli {

class IgnoreRules {
 public:
  static IgnoreRules parse(std::string_view text);

  // `path` is relative to the function folder, '/'-separated, no leading
  // "./" ("lib/util.py"). A folder's contents need no check of their own
  // once the folder is ignored: as with git, nothing inside comes back.
  bool ignores(std::string_view path, bool isDirectory) const;

  bool empty() const { return rules_.empty(); }

 private:
  struct Rule {
    std::string glob;  // matched against the whole relative path
    bool negated = false;
    bool directoryOnly = false;
  };
  std::vector<Rule> rules_;
};

}  // namespace tinyfaas::cli
