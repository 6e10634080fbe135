#pragma once
// The last lines each function's instances wrote, for GET /logs.

#include <chrono>
#include <cstddef>
#include <deque>
#include <map>
#include <string>
#include <string_view>

#include "core/log_sink.hpp"

namespace tinyfaas {

// Lives on the management thread (backends append there, the API reads there).
class LogStore final : public LogSink {
 public:
  explicit LogStore(std::size_t maxLinesPerFunction = 2000) : maxLines_(maxLinesPerFunction) {}

  void append(std::string_view function, std::string_view instance, std::string_view line) override;
  // Lines as "TIMESTAMP INSTANCE LINE\n"; empty when the function logged nothing.
  std::string read(std::string_view function) const;
  // Every function's lines, grouped by function.
  std::string readAll() const;
  void forget(std::string_view function);

 private:
  std::size_t maxLines_;
  std::map<std::string, std::deque<std::string>, std::less<>> lines_;
};

}  // namespace tinyfaas
