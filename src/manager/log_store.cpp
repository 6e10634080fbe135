#include "manager/log_store.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <ctime>
#include <fstream>
#include <sstream>
#include <tuple>

#include <spdlog/spdlog.h>

#include "core/function_name.hpp"
#include "util/private_dir.hpp"

namespace tinyfaas {

namespace fs = std::filesystem;

namespace {

// "2026-01-31T12:34:56.789Z": sorts as text in time order.
constexpr std::size_t kTimestampSize = 24;
// A buffer this large is written at once, not at the next interval.
constexpr std::size_t kUnwrittenBytes = 64 << 10;

std::string utcTimestamp(std::chrono::system_clock::time_point when) {
  const std::time_t seconds = std::chrono::system_clock::to_time_t(when);
  const auto millis = std::chrono::duration_cast<std::chrono::milliseconds>(when.time_since_epoch()).count() % 1000;
  std::tm tm{};
  gmtime_r(&seconds, &tm);
  char buffer[32];
  const std::size_t n = std::strftime(buffer, sizeof buffer, "%Y-%m-%dT%H:%M:%S", &tm);
  std::string out(buffer, n);
  char ms[8];
  std::snprintf(ms, sizeof ms, ".%03dZ", static_cast<int>(millis));
  return out + ms;
}

std::string ownerLine(const std::optional<std::string>& owner) {
  return owner ? "#owner " + *owner + "\n" : "#nobody\n";
}

bool writeAll(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

}  // namespace

boost::system::result<LogQuery, std::string> parseLogQuery(std::optional<std::string_view> tail,
                                                           std::optional<std::string_view> since,
                                                           std::chrono::system_clock::time_point now) {
  LogQuery query;
  if (tail) {
    std::size_t lines = 0;
    auto [end, ec] = std::from_chars(tail->data(), tail->data() + tail->size(), lines);
    if (tail->empty() || ec != std::errc() || end != tail->data() + tail->size())
      return "tail must be a whole number of lines, e.g. tail=100 (got '" + std::string(*tail) + "')";
    query.tail = lines;
  }
  if (since) {
    const std::string bad =
        "since must be a duration such as 30s, 10m, 2h, 1d or 1h30m (got '" + std::string(*since) + "')";
    std::chrono::seconds total{0};
    std::string_view rest = *since;
    if (rest.empty()) return bad;
    while (!rest.empty()) {
      long long amount = 0;
      auto [end, ec] = std::from_chars(rest.data(), rest.data() + rest.size(), amount);
      const std::size_t digits = static_cast<std::size_t>(end - rest.data());
      // Ten years at most: beyond that every line is meant anyway.
      if (ec != std::errc() || digits == 0 || amount < 0 || amount > 10LL * 366 * 86400 || digits == rest.size())
        return bad;
      long long unit = 0;
      switch (rest[digits]) {
        case 's': unit = 1; break;
        case 'm': unit = 60; break;
        case 'h': unit = 3600; break;
        case 'd': unit = 86400; break;
        default: return bad;
      }
      total += std::chrono::seconds(amount * unit);
      if (total > std::chrono::seconds(10LL * 366 * 86400)) return bad;
      rest.remove_prefix(digits + 1);
    }
    query.since = now - total;
  }
  return query;
}

LogStore::~LogStore() { flush(); }

bool LogStore::mayRead(const Scope& scope, const Function& function) {
  return scope.admin || (function.owner && *function.owner == scope.tenant);
}

void LogStore::append(std::string_view function, std::string_view instance, std::string_view line) {
  auto it = functions_.find(function);
  if (it == functions_.end()) it = functions_.emplace(std::string(function), Function{}).first;
  std::string entry = utcTimestamp(std::chrono::system_clock::now());
  entry.append(" ").append(instance).append(" ").append(line);
  for (const auto& [id, follower] : followers_) {
    if (mayRead(follower.first, it->second)) follower.second(function, entry);
  }
  const std::uint64_t sequence = nextSequence_++;
  if (!dir_.empty()) {
    // On disk with its sequence: lines of one millisecond keep their order.
    const std::size_t before = it->second.unwritten.size();
    it->second.unwritten.append(std::to_string(sequence)).append(" ").append(entry).push_back('\n');
    unwrittenBytes_ += it->second.unwritten.size() - before;
  }
  add(it, std::move(entry), sequence);
  if (unwrittenBytes_ > kUnwrittenBytes) {
    flush();
  } else if (unwrittenBytes_ > 0 && !flushScheduled_) {
    scheduleFlush();
  }
}

void LogStore::add(Functions::iterator function, std::string entry, std::uint64_t sequence) {
  auto& lines = function->second.lines;
  if (lines.empty()) oldest_.emplace(sequence, function->first);
  lines.push_back(Line{sequence, std::move(entry)});
  bytes_ += cost(lines.back());
  if (lines.size() > limits_.maxLinesPerFunction) dropOldestLine(function);
  // The line just added is the newest, so it goes last.
  while ((bytes_ > limits_.maxBytes || oldest_.size() > limits_.maxFunctions) && !oldest_.empty() &&
         bytes_ > cost(lines.back())) {
    dropOldestLine(functions_.find(oldest_.begin()->second));
  }
}

void LogStore::dropOldestLine(Functions::iterator function) {
  auto& lines = function->second.lines;
  oldest_.erase({lines.front().sequence, function->first});
  bytes_ -= cost(lines.front());
  lines.pop_front();
  if (!lines.empty()) {
    oldest_.emplace(lines.front().sequence, function->first);
  } else if (!function->second.claimed) {
    unwrittenBytes_ -= function->second.unwritten.size();
    removeFiles(function->second, function->first);
    functions_.erase(function);
  }
}

void LogStore::dropLines(Function& function, std::string_view name) {
  unwrittenBytes_ -= function.unwritten.size();
  function.unwritten.clear();
  if (function.lines.empty()) return;
  oldest_.erase({function.lines.front().sequence, name});
  for (const auto& line : function.lines) bytes_ -= cost(line);
  function.lines.clear();
}

void LogStore::claim(std::string_view function, const std::string& owner) {
  auto it = functions_.find(function);
  if (it == functions_.end()) it = functions_.emplace(std::string(function), Function{}).first;
  it->second.claimed = true;
  if (it->second.owner == owner) return;
  dropLines(it->second, it->first);
  removeFiles(it->second, it->first);
  it->second.owner = owner;
}

void LogStore::forget(std::string_view function) {
  auto it = functions_.find(function);
  if (it == functions_.end()) return;
  dropLines(it->second, it->first);
  removeFiles(it->second, it->first);
  functions_.erase(it);
}

void LogStore::release(std::string_view function) {
  auto it = functions_.find(function);
  if (it == functions_.end()) return;
  it->second.claimed = false;
  if (it->second.lines.empty()) forget(function);
}

void LogStore::forgetReleased(const Scope& scope) {
  std::vector<std::string> released;
  for (const auto& [name, function] : functions_) {
    if (!function.claimed && function.owner && scope.covers(*function.owner)) released.push_back(name);
  }
  for (const auto& name : released) forget(name);
}

LogStore::Subscription LogStore::follow(Scope scope, Follower follower) {
  const std::uint64_t id = nextFollowerId_++;
  followers_.emplace(id, std::pair{std::move(scope), std::move(follower)});
  return Subscription(this, id);
}

void LogStore::collect(const Function& function, const Scope& scope, std::vector<const Line*>& out) const {
  if (!mayRead(scope, function)) return;
  for (const auto& line : function.lines) out.push_back(&line);
}

std::string LogStore::render(std::vector<const Line*> lines, const LogQuery& query) const {
  std::sort(lines.begin(), lines.end(), [](const Line* a, const Line* b) { return a->sequence < b->sequence; });
  if (query.since) {
    // Not a binary search: the clock may have been set back in between.
    const std::string cutoff = utcTimestamp(*query.since);
    std::erase_if(lines, [&](const Line* line) { return line->text.compare(0, kTimestampSize, cutoff) < 0; });
  }
  auto first = lines.begin();
  if (query.tail && static_cast<std::size_t>(lines.end() - first) > *query.tail) first = lines.end() - *query.tail;
  std::string out;
  for (auto it = first; it != lines.end(); ++it) out.append((*it)->text).push_back('\n');
  return out;
}

std::string LogStore::read(std::string_view function, const Scope& scope, const LogQuery& query) const {
  std::vector<const Line*> lines;
  if (auto it = functions_.find(function); it != functions_.end()) collect(it->second, scope, lines);
  return render(std::move(lines), query);
}

std::string LogStore::readAll(const Scope& scope, const LogQuery& query) const {
  std::vector<const Line*> lines;
  for (const auto& [name, function] : functions_) collect(function, scope, lines);
  return render(std::move(lines), query);
}

// Disk

fs::path LogStore::file(std::string_view name, bool rotated) const {
  return dir_ / (std::string(name) + (rotated ? ".log.1" : ".log"));
}

void LogStore::removeFiles(Function& function, std::string_view name) {
  if (dir_.empty()) return;
  std::error_code ignored;
  fs::remove(file(name), ignored);
  fs::remove(file(name, true), ignored);
  diskBytes_ -= function.fileBytes + function.rotatedBytes;
  function.fileBytes = function.rotatedBytes = 0;
}

void LogStore::write(Functions::value_type& entry) {
  auto& [name, function] = entry;
  if (function.unwritten.empty()) return;
  if (function.fileBytes > 0 && function.fileBytes + function.unwritten.size() > limits_.maxFileBytes) {
    std::error_code ec;
    fs::rename(file(name), file(name, true), ec);
    diskBytes_ -= function.rotatedBytes;
    function.rotatedBytes = ec ? 0 : function.fileBytes;
    if (ec) diskBytes_ -= function.fileBytes;
    function.fileBytes = 0;
  }
  const std::string text =
      function.fileBytes == 0 ? ownerLine(function.owner) + function.unwritten : function.unwritten;
  unwrittenBytes_ -= function.unwritten.size();
  function.unwritten.clear();
  // O_NOFOLLOW: nothing but the daemon writes here, a link is no log file.
  const int fd = ::open(file(name).c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) {
    spdlog::warn("logs of {}: cannot open {}: {}", name, file(name).string(), std::strerror(errno));
    return;
  }
  const bool written = writeAll(fd, text);
  const int error = errno;
  ::close(fd);
  if (!written) spdlog::warn("logs of {}: cannot write {}: {}", name, file(name).string(), std::strerror(error));
  function.fileBytes += text.size();
  diskBytes_ += text.size();
}

void LogStore::keepWithinDisk() {
  if (diskBytes_ <= limits_.maxDiskBytes) return;
  // The functions whose oldest line is oldest first, then those without lines.
  std::vector<Functions::iterator> order;
  for (const auto& [sequence, name] : oldest_) order.push_back(functions_.find(name));
  for (auto it = functions_.begin(); it != functions_.end(); ++it) {
    if (it->second.lines.empty()) order.push_back(it);
  }
  for (bool rotated : {true, false}) {
    for (auto it : order) {
      if (diskBytes_ <= limits_.maxDiskBytes) return;
      std::size_t& bytes = rotated ? it->second.rotatedBytes : it->second.fileBytes;
      if (bytes == 0) continue;
      std::error_code ignored;
      fs::remove(file(it->first, rotated), ignored);
      diskBytes_ -= bytes;
      bytes = 0;
    }
  }
}

void LogStore::flush() {
  if (dir_.empty()) return;
  for (auto& entry : functions_) write(entry);
  keepWithinDisk();
}

void LogStore::stopTimedFlushes() {
  flush();
  flushScheduled_ = false;
  flushTimer_.reset();  // its pending wait ends with operation_aborted
}

void LogStore::scheduleFlush() {
  if (!flushTimer_) return;
  flushScheduled_ = true;
  flushTimer_->expires_after(limits_.flushInterval);
  flushTimer_->async_wait([this](const boost::system::error_code& ec) {
    if (ec) return;  // the store is going away: its destructor flushes
    flushScheduled_ = false;
    flush();
  });
}

boost::system::result<void, std::string> LogStore::keepIn(fs::path dir, boost::asio::any_io_executor executor) {
  if (auto made = makePrivateDirectory(dir); !made) return made.error();
  dir_ = std::move(dir);
  flushTimer_.emplace(std::move(executor));
  load();
  return {};
}

void LogStore::load() {
  struct Loaded {
    std::uint64_t sequence;
    std::string text;
    std::string name;  // adding lines may drop a function nobody owns
  };
  std::vector<Loaded> loaded;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir_, ec)) {
    const std::string filename = entry.path().filename().string();
    const bool rotated = filename.ends_with(".log.1");
    if (!rotated && !filename.ends_with(".log")) continue;
    const std::string name = filename.substr(0, filename.size() - (rotated ? 6 : 4));
    std::error_code typeError;
    if (!isValidFunctionName(name) || !entry.is_regular_file(typeError) || entry.is_symlink(typeError)) continue;
    std::ifstream in(entry.path(), std::ios::binary);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    // A line cut short by a crash would run into the next one written.
    const std::size_t end = text.rfind('\n');
    text.resize(end == std::string::npos ? 0 : end + 1);
    fs::resize_file(entry.path(), text.size(), typeError);
    if (text.empty()) continue;
    auto it = functions_.try_emplace(name).first;
    std::istringstream lines(text);
    std::string line;
    std::getline(lines, line);
    // The owner line; a file without one is nobody's (admins only).
    if (line.starts_with("#owner ")) it->second.owner = line.substr(7);
    (rotated ? it->second.rotatedBytes : it->second.fileBytes) = text.size();
    diskBytes_ += text.size();
    while (std::getline(lines, line)) {
      // "SEQUENCE TIMESTAMP INSTANCE LINE"
      std::uint64_t sequence = 0;
      auto [end, parsed] = std::from_chars(line.data(), line.data() + line.size(), sequence);
      if (parsed != std::errc() || *end != ' ') continue;
      line.erase(0, static_cast<std::size_t>(end - line.data()) + 1);
      if (line.size() >= kTimestampSize) loaded.push_back({sequence, std::move(line), it->first});
    }
  }
  // Rotated files hold older lines of the same function; the order is the
  // one they were written in across all of them, and new lines come after.
  std::sort(loaded.begin(), loaded.end(), [](const Loaded& a, const Loaded& b) { return a.sequence < b.sequence; });
  for (auto& line : loaded) add(functions_.try_emplace(line.name).first, std::move(line.text), line.sequence);
  if (!loaded.empty()) nextSequence_ = std::max(nextSequence_, loaded.back().sequence + 1);
  if (!loaded.empty()) spdlog::info("logs: {} line(s) kept from before in {}", loaded.size(), dir_.string());
  keepWithinDisk();
}

}  // namespace tinyfaas
