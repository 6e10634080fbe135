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

void LogStore::append(std::string_view function, std::string_view instance, std::string_view line) {
  auto it = lines_.find(function);
  if (it == lines_.end()) it = lines_.emplace(std::string(function), std::deque<std::string>{}).first;
  std::string entry = utcTimestamp();
  entry.append(" ").append(instance).append(" ").append(line);
  for (const auto& [id, follower] : followers_) follower(function, entry);
  it->second.push_back(std::move(entry));
  if (it->second.size() > maxLines_) it->second.pop_front();
}

LogStore::Subscription LogStore::follow(Follower follower) {
  const std::uint64_t id = nextFollowerId_++;
  followers_.emplace(id, std::move(follower));
  return Subscription(this, id);
}

std::string LogStore::read(std::string_view function) const {
  std::string out;
  if (auto it = lines_.find(function); it != lines_.end()) {
    for (const auto& line : it->second) out.append(line).push_back('\n');
  }
  return out;
}

std::string LogStore::readAll() const {
  std::string out;
  for (const auto& [function, lines] : lines_) out += read(function);
  return out;
}

void LogStore::forget(std::string_view function) {
  if (auto it = lines_.find(function); it != lines_.end()) lines_.erase(it);
}

}  // namespace tinyfaas
