#include "archive/ignore_rules.hpp"

namespace tinyfaas::cli {
namespace {

// [...] at the start of `p` (just after '['): whether `c` is in the class,
// and where the class ends; npos when it never closes (then '[' is literal).
std::size_t matchClass(std::string_view p, char c, bool& matched) {
  std::size_t i = 0;
  const bool negate = i < p.size() && (p[i] == '!' || p[i] == '^');
  if (negate) ++i;
  bool found = false;
  for (bool first = true; i < p.size(); first = false) {
    if (p[i] == ']' && !first) {
      matched = found != negate;
      return i + 1;
    }
    char low = p[i] == '\\' && i + 1 < p.size() ? p[++i] : p[i];
    ++i;
    char high = low;
    if (i + 1 < p.size() && p[i] == '-' && p[i + 1] != ']') {
      high = p[i + 1] == '\\' && i + 2 < p.size() ? p[i + 2] : p[i + 1];
      i += p[i + 1] == '\\' ? 3 : 2;
    }
    if (c >= low && c <= high) found = true;
  }
  return std::string_view::npos;
}

// Memoised over (pattern position, path position), so '*' and '**' cost
// at most pattern length times path length steps, whatever the pattern.
class GlobMatcher {
 public:
  GlobMatcher(std::string_view pattern, std::string_view path)
      : p_(pattern), s_(path), memo_((pattern.size() + 1) * (path.size() + 1), kUnknown) {}

  bool matches() { return match(0, 0); }

 private:
  static constexpr char kUnknown = 2;

  bool match(std::size_t pi, std::size_t si) {
    char& known = memo_[pi * (s_.size() + 1) + si];
    if (known == kUnknown) known = compute(pi, si) ? 1 : 0;
    return known == 1;
  }

  bool compute(std::size_t pi, std::size_t si) {
    const std::string_view p = p_.substr(pi);
    const std::string_view s = s_.substr(si);
    if (p.empty()) return s.empty();
    if (p.starts_with("**/")) {
      // Zero or more whole segments.
      if (match(pi + 3, si)) return true;
      for (std::size_t i = 0; i < s.size(); ++i)
        if (s[i] == '/' && match(pi + 3, si + i + 1)) return true;
      return false;
    }
    if (p == "**") return true;
    if (p.starts_with("**")) return match(pi + 1, si);  // "**x" is "*x", as in git
    const bool segmentChar = !s.empty() && s.front() != '/';
    switch (p.front()) {
      case '*':
        for (std::size_t i = 0;; ++i) {
          if (match(pi + 1, si + i)) return true;
          if (i == s.size() || s[i] == '/') return false;
        }
      case '?': return segmentChar && match(pi + 1, si + 1);
      case '[': {
        bool matched = false;
        const auto end = matchClass(p.substr(1), segmentChar ? s.front() : '\0', matched);
        if (end != std::string_view::npos) return segmentChar && matched && match(pi + 1 + end, si + 1);
        return !s.empty() && s.front() == '[' && match(pi + 1, si + 1);  // no ']': a literal '['
      }
      case '\\':
        if (p.size() > 1) return !s.empty() && s.front() == p[1] && match(pi + 2, si + 1);
        [[fallthrough]];
      default: return !s.empty() && s.front() == p.front() && match(pi + 1, si + 1);
    }
  }

  std::string_view p_;
  std::string_view s_;
  std::vector<char> memo_;
};

}  // namespace

IgnoreRules IgnoreRules::parse(std::string_view text) {
  IgnoreRules rules;
  while (!text.empty()) {
    const auto eol = text.find('\n');
    std::string line(text.substr(0, eol));
    text.remove_prefix(eol == std::string_view::npos ? text.size() : eol + 1);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    // Trailing blanks go unless escaped with a backslash.
    while (!line.empty() && line.back() == ' ' && !(line.size() > 1 && line[line.size() - 2] == '\\')) line.pop_back();
    if (line.empty() || line.front() == '#') continue;
    Rule rule;
    if (line.front() == '!') {
      rule.negated = true;
      line.erase(0, 1);
    } else if (line.starts_with("\\#") || line.starts_with("\\!")) {
      line.erase(0, 1);
    }
    if (!line.empty() && line.back() == '/') {
      rule.directoryOnly = true;
      line.pop_back();
    }
    if (line.empty()) continue;
    // A slash before the end anchors the pattern; else it names an entry
    // at any depth.
    if (line.front() == '/') {
      line.erase(0, 1);
    } else if (line.find('/') == std::string::npos) {
      line = "**/" + line;
    }
    if (line.empty()) continue;
    rule.glob = std::move(line);
    rules.rules_.push_back(std::move(rule));
  }
  return rules;
}

bool IgnoreRules::ignores(std::string_view path, bool isDirectory) const {
  bool ignored = false;
  for (const auto& rule : rules_) {
    if (rule.directoryOnly && !isDirectory) continue;
    if (rule.negated == ignored && GlobMatcher(rule.glob, path).matches()) ignored = !rule.negated;
  }
  return ignored;
}

}  // namespace tinyfaas::cli
