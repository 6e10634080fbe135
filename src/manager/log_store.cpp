#include "manager/log_store.hpp"

#include <ctime>

namespace tinyfaas {

namespace {

std::string utcTimestamp() {
  const auto now = std::chrono::system_clock::now();
  const std::time_t seconds = std::chrono::system_clock::to_time_t(now);
  const auto millis =
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm tm{};
  gmtime_r(&seconds, &tm);
  char buffer[32];
  const std::size_t n = std::strftime(buffer, sizeof buffer, "%Y-%m-%dT%H:%M:%S", &tm);
  std::string out(buffer, n);
  char ms[8];
  std::snprintf(ms, sizeof ms, ".%03dZ", static_cast<int>(millis));
  return out + ms;
}

}  // namespace

bool LogStore::mayRead(const Scope& scope, const Function& function) {
  return scope.admin || (function.owner && *function.owner == scope.tenant);
}

void LogStore::append(std::string_view function, std::string_view instance, std::string_view line) {
  auto it = functions_.find(function);
  if (it == functions_.end()) it = functions_.emplace(std::string(function), Function{}).first;
  std::string entry = utcTimestamp();
  entry.append(" ").append(instance).append(" ").append(line);
  for (const auto& [id, follower] : followers_) {
    if (mayRead(follower.first, it->second)) follower.second(function, entry);
  }
  auto& lines = it->second.lines;
  if (lines.empty()) oldest_.emplace(nextSequence_, it->first);
  lines.push_back(Line{nextSequence_++, std::move(entry)});
  bytes_ += cost(lines.back());
  if (lines.size() > limits_.maxLinesPerFunction) dropOldestLine(it);
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
  } else if (!function->second.owner) {
    functions_.erase(function);
  }
}

void LogStore::dropLines(Function& function, std::string_view name) {
  if (function.lines.empty()) return;
  oldest_.erase({function.lines.front().sequence, name});
  for (const auto& line : function.lines) bytes_ -= cost(line);
  function.lines.clear();
}

void LogStore::claim(std::string_view function, const std::string& owner) {
  auto it = functions_.find(function);
  if (it == functions_.end()) it = functions_.emplace(std::string(function), Function{}).first;
  if (it->second.owner == owner) return;
  dropLines(it->second, it->first);
  it->second.owner = owner;
}

void LogStore::forget(std::string_view function) {
  auto it = functions_.find(function);
  if (it == functions_.end()) return;
  dropLines(it->second, it->first);
  functions_.erase(it);
}

LogStore::Subscription LogStore::follow(Scope scope, Follower follower) {
  const std::uint64_t id = nextFollowerId_++;
  followers_.emplace(id, std::pair{std::move(scope), std::move(follower)});
  return Subscription(this, id);
}

std::string LogStore::read(std::string_view function, const Scope& scope) const {
  std::string out;
  if (auto it = functions_.find(function); it != functions_.end() && mayRead(scope, it->second)) {
    for (const auto& line : it->second.lines) out.append(line.text).push_back('\n');
  }
  return out;
}

std::string LogStore::readAll(const Scope& scope) const {
  std::string out;
  for (const auto& [function, lines] : functions_) out += read(function, scope);
  return out;
}

}  // namespace tinyfaas
