#include "core/mqtt_trigger.hpp"

namespace tinyfaas {

namespace {

std::optional<std::string> commonProblem(std::string_view topic) {
  if (topic.empty()) return "must not be empty";
  if (topic.size() > kMaxTopicBytes) return "is longer than " + std::to_string(kMaxTopicBytes) + " bytes";
  if (topic.find('\0') != std::string_view::npos) return "contains a NUL byte";
  if (topic.front() == '$') return "must not start with $ (those topics are the broker's)";
  return std::nullopt;
}

}  // namespace

std::optional<std::string> topicFilterProblem(std::string_view filter) {
  if (auto problem = commonProblem(filter)) return problem;
  std::size_t start = 0;
  while (true) {
    const std::size_t end = filter.find('/', start);
    const std::string_view level = filter.substr(start, end == std::string_view::npos ? end : end - start);
    const bool wildcard = level.find_first_of("+#") != std::string_view::npos;
    if (wildcard && level != "+" && level != "#") return "uses + or # inside a level (they must be a whole level)";
    if (level == "#" && end != std::string_view::npos) return "has # before its last level";
    if (end == std::string_view::npos) return std::nullopt;
    start = end + 1;
  }
}

std::optional<std::string> topicNameProblem(std::string_view topic) {
  if (auto problem = commonProblem(topic)) return problem;
  if (topic.find_first_of("+#") != std::string_view::npos) return "must not contain the wildcards + or #";
  return std::nullopt;
}

}  // namespace tinyfaas
