#include "manager/go_build.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <iterator>
#include <regex>
#include <sstream>

#include <spdlog/spdlog.h>

#include "manager/archive.hpp"
#include "sandbox/code_permissions.hpp"
#include "util/private_dir.hpp"

namespace tinyfaas {

namespace fs = std::filesystem;

namespace {

// Where build.sh builds and keeps its caches inside the sandbox: never
// shown to a user.
constexpr std::string_view kSandboxBuildDir = "/tmp/gobuild";
constexpr std::string_view kSandboxModCache = "/tmp/caches/mod/";
// Source files looked at for imports: enough for any function, bounded
// for an upload that is mostly files.
constexpr int kMaxScannedFiles = 5000;

std::string trim(std::string_view text) {
  const auto begin = text.find_first_not_of(" \t\r");
  if (begin == std::string_view::npos) return {};
  const auto end = text.find_last_not_of(" \t\r");
  return std::string(text.substr(begin, end - begin + 1));
}

std::string unquote(std::string text) {
  if (text.size() >= 2 && (text.front() == '"' || text.front() == '`') && text.back() == text.front())
    return text.substr(1, text.size() - 2);
  return text;
}

// A Go source file's tokens, as far as an import section needs them:
// identifiers, string literals, punctuation; comments skipped.
class ImportTokens {
 public:
  explicit ImportTokens(std::string_view source) : s_(source) {}

  // The next token; "" at the end. A string literal keeps its quotes.
  std::string next() {
    for (;;) {
      while (at_ < s_.size() && std::isspace(static_cast<unsigned char>(s_[at_])) && s_[at_] != '\n') ++at_;
      if (at_ >= s_.size()) return {};
      if (s_.compare(at_, 2, "//") == 0) {
        at_ = std::min(s_.find('\n', at_), s_.size());
        continue;
      }
      if (s_.compare(at_, 2, "/*") == 0) {
        const auto end = s_.find("*/", at_ + 2);
        at_ = end == std::string_view::npos ? s_.size() : end + 2;
        continue;
      }
      break;
    }
    const char c = s_[at_];
    if (c == '\n') {
      ++at_;
      return ";";  // where Go would insert one, near enough for imports
    }
    if (c == '"' || c == '`') {
      std::size_t end = at_ + 1;
      while (end < s_.size() && s_[end] != c) {
        if (c == '"' && s_[end] == '\\') ++end;
        if (c == '"' && s_[end] == '\n') break;
        ++end;
      }
      std::string token(s_.substr(at_, std::min(end + 1, s_.size()) - at_));
      at_ = std::min(end + 1, s_.size());
      return token;
    }
    if (std::isalnum(static_cast<unsigned char>(c)) || c == '_' || static_cast<unsigned char>(c) >= 0x80) {
      std::size_t end = at_;
      while (end < s_.size() && (std::isalnum(static_cast<unsigned char>(s_[end])) || s_[end] == '_' ||
                                 static_cast<unsigned char>(s_[end]) >= 0x80))
        ++end;
      std::string token(s_.substr(at_, end - at_));
      at_ = end;
      return token;
    }
    ++at_;
    return std::string(1, c);
  }

  // The next token that is not a ";".
  std::string nextSolid() {
    std::string token;
    do token = next();
    while (token == ";");
    return token;
  }

 private:
  std::string_view s_;
  std::size_t at_ = 0;
};

bool isStringLiteral(const std::string& token) {
  return token.size() >= 2 && (token.front() == '"' || token.front() == '`');
}

// A path that leads outside the function folder (a replace target).
bool pointsOutside(const std::string& target) {
  if (target.front() == '/') return true;
  for (const auto& part : fs::path(target)) {
    if (part == "..") return true;
  }
  return false;
}

// Whether `path` is a package of the standard library (no dot in its first
// element: the go command's own rule) or of module `module`.
bool isLocalImport(const std::string& path, const std::string& module) {
  const std::string first = path.substr(0, path.find('/'));
  if (first.find('.') == std::string::npos) return true;
  return !module.empty() && (path == module || path.rfind(module + "/", 0) == 0);
}

bool importsModules(const fs::path& codeDir, const std::string& module) {
  std::error_code ec;
  int scanned = 0;
  for (fs::recursive_directory_iterator it(codeDir, fs::directory_options::none, ec), end; !ec && it != end;
       it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (it->is_directory(ec)) {
      // What the go command itself leaves out of a build.
      if (name == "vendor" || name == "testdata" || name.front() == '.' || name.front() == '_')
        it.disable_recursion_pending();
      continue;
    }
    if (!it->is_regular_file(ec) || !name.ends_with(".go") || name.ends_with("_test.go")) continue;
    if (++scanned > kMaxScannedFiles) return true;
    std::ifstream in(it->path(), std::ios::binary);
    const std::string source((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    for (const auto& path : goImports(source)) {
      if (!isLocalImport(path, module)) return true;
    }
  }
  return false;
}

}  // namespace

std::vector<std::string> goImports(std::string_view source) {
  std::vector<std::string> paths;
  ImportTokens tokens(source);
  if (tokens.nextSolid() != "package") return paths;
  tokens.nextSolid();  // the package's name
  for (std::string token = tokens.nextSolid(); token == "import"; token = tokens.nextSolid()) {
    token = tokens.nextSolid();
    if (token == "(") {
      for (token = tokens.nextSolid(); !token.empty() && token != ")"; token = tokens.nextSolid()) {
        if (isStringLiteral(token)) paths.push_back(unquote(token));
      }
      continue;
    }
    if (!isStringLiteral(token)) token = tokens.nextSolid();  // a name, "." or "_"
    if (isStringLiteral(token)) paths.push_back(unquote(token));
  }
  return paths;
}

boost::system::result<GoBuildPlan, std::string> planGoBuild(const fs::path& codeDir) {
  GoBuildPlan plan;
  std::error_code ec;
  plan.vendored = fs::is_regular_file(codeDir / "vendor" / "modules.txt", ec);
  std::ifstream in(codeDir / "go.mod");
  std::string module, block, raw;
  bool requiresModules = false;
  for (int number = 1; std::getline(in, raw); ++number) {
    std::string line = trim(raw.substr(0, raw.find("//")));
    if (line.empty()) continue;
    if (!block.empty() && line == ")") {
      block.clear();
      continue;
    }
    std::istringstream words(line);
    std::string directive;
    if (block.empty()) {
      words >> directive;
      if (line.back() == '(') {
        block = directive;
        continue;
      }
    } else {
      directive = block;
    }
    if (directive == "module") {
      words >> module;
      module = unquote(module);
    } else if (directive == "require") {
      requiresModules = true;
    } else if (directive == "replace") {
      const auto arrow = line.find("=>");
      if (arrow == std::string::npos) continue;
      std::istringstream target(line.substr(arrow + 2));
      std::string path;
      target >> path;
      path = unquote(path);
      const bool folder = path.rfind("./", 0) == 0 || path.rfind("../", 0) == 0 || path.front() == '/';
      if (folder && pointsOutside(path))
        return "go.mod line " + std::to_string(number) + ": replace with " + path +
               " points outside the function folder";
    }
  }
  plan.network = !plan.vendored && (requiresModules || importsModules(codeDir, module));
  return plan;
}

std::string goBuildErrorLine(const std::vector<std::string>& lines) {
  static const std::regex position(R"(^(?:\./)?([^\s:]+\.go):(\d+)(?::\d+)?: (.+)$)");
  const auto clean = [](std::string line) {
    for (const auto& [prefix, replacement] : {std::pair{std::string(kSandboxBuildDir) + "/", std::string()},
                                              std::pair{std::string(kSandboxBuildDir), std::string(".")},
                                              std::pair{std::string(kSandboxModCache), std::string()}}) {
      for (auto at = line.find(prefix); at != std::string::npos; at = line.find(prefix, at + replacement.size()))
        line.replace(at, prefix.size(), replacement);
    }
    return line;
  };
  std::string goLine;
  for (const auto& raw : lines) {
    const std::string line = clean(raw);
    std::smatch match;
    if (std::regex_match(line, match, position)) {
      if (match[1] == "tinyfaas_main.go")
        return "fn.go must define func fn(data string, headers map[string]string) (string, error): " + match[3].str();
      return line.rfind("./", 0) == 0 ? line.substr(2) : line;
    }
    // Progress lines are not the reason.
    if (goLine.empty() && line.rfind("go: ", 0) == 0 && line.rfind("go: downloading ", 0) != 0 &&
        line.rfind("go: finding ", 0) != 0 && line.rfind("go: found ", 0) != 0)
      goLine = line;
  }
  if (!goLine.empty()) return goLine;
  for (auto it = lines.rbegin(); it != lines.rend(); ++it) {
    if (!trim(*it).empty()) return clean(*it);
  }
  return "no output";
}

GoBuildCache::GoBuildCache(fs::path stateDir, std::uintmax_t maxBytes, std::optional<gid_t> shareWith)
    : stateDir_(std::move(stateDir)), root_(stateDir_ / "go-cache"), maxBytes_(maxBytes), shareWith_(shareWith) {}

fs::path GoBuildCache::folderOf(const std::string& owner) const {
  // Tenant names are letters, digits, - and _; no token file: no tenant.
  return root_ / (owner.empty() ? std::string("default") : "tenant-" + owner);
}

boost::system::result<fs::path, Failure> GoBuildCache::use(const std::string& owner) {
  if (auto made = makePrivateDirectory(root_); !made) return Failure{made.error()};
  const fs::path folder = folderOf(owner);
  std::error_code ec;
  fs::create_directories(folder, ec);
  if (ec) return Failure{"cannot create " + folder.string() + ": " + ec.message()};
  fs::last_write_time(folder, fs::file_time_type::clock::now(), ec);
  // A folder already the sandbox group's was shared when it was made and
  // after each merge: walking its thousands of files again would only slow
  // every build. Another group's (a changed --sandbox-user) is shared anew.
  struct stat st {};
  if (shareWith_ && (::stat(folder.c_str(), &st) != 0 || st.st_gid != *shareWith_)) {
    if (auto shared = sandbox::shareWithSandbox(stateDir_, folder, *shareWith_); !shared)
      return Failure{shared.error()};
  }
  return {boost::system::in_place_value, folder};
}

boost::system::result<void, std::string> GoBuildCache::merge(const std::string& owner, std::string_view zip) {
  auto folder = use(owner);
  if (!folder) return folder.error().message;
  // Unpacked with the upload's checks next to the folders (never inside
  // one a build can see), then moved in file by file.
  const fs::path incoming = root_ / (".incoming." + std::to_string(++merges_));
  std::error_code ec;
  fs::remove_all(incoming, ec);
  fs::create_directory(incoming, ec);
  if (ec) return "cannot create " + incoming.string() + ": " + ec.message();
  ExtractLimits limits;
  limits.maxTotalBytes = static_cast<std::size_t>(std::min<std::uintmax_t>(maxBytes_, SIZE_MAX));
  limits.maxEntries = 200000;
  auto extracted = extractZip(zip, incoming, limits);
  std::string error = extracted ? std::string() : extracted.error();
  for (const char* kind : {"build", "mod"}) {
    if (!error.empty()) break;
    const fs::path from = incoming / kind;
    if (!fs::is_directory(from, ec)) continue;
    for (fs::recursive_directory_iterator it(from, ec), end; !ec && it != end; it.increment(ec)) {
      if (!it->is_regular_file(ec)) continue;
      const fs::path to = *folder / kind / it->path().lexically_relative(from);
      fs::create_directories(to.parent_path(), ec);
      if (!ec) fs::rename(it->path(), to, ec);
      if (ec) break;
    }
    if (ec) error = "cannot add to the go build cache: " + ec.message();
  }
  fs::remove_all(incoming, ec);
  if (error.empty() && shareWith_) {
    if (auto shared = sandbox::shareWithSandbox(stateDir_, *folder, *shareWith_); !shared) error = shared.error();
  }
  trim();
  if (!error.empty()) return error;
  return {};
}

void GoBuildCache::trim() {
  struct Folder {
    fs::path path;
    fs::file_time_type used;
    std::uintmax_t bytes = 0;
  };
  std::vector<Folder> folders;
  std::uintmax_t total = 0;
  std::error_code ec;
  for (fs::directory_iterator it(root_, ec), end; !ec && it != end; it.increment(ec)) {
    if (!it->is_directory(ec) || it->path().filename().string().front() == '.') continue;
    Folder folder{it->path(), fs::last_write_time(it->path(), ec)};
    for (fs::recursive_directory_iterator file(it->path(), ec), last; !ec && file != last; file.increment(ec)) {
      if (file->is_regular_file(ec)) folder.bytes += file->file_size(ec);
    }
    total += folder.bytes;
    folders.push_back(std::move(folder));
  }
  std::sort(folders.begin(), folders.end(), [](const Folder& a, const Folder& b) { return a.used < b.used; });
  for (const auto& folder : folders) {
    if (total <= maxBytes_) break;
    spdlog::info("go build cache: removing {} ({} MB, least recently used) to stay within {} MB",
                 folder.path.filename().string(), folder.bytes >> 20, maxBytes_ >> 20);
    fs::remove_all(folder.path, ec);
    total -= folder.bytes;
  }
}

}  // namespace tinyfaas
