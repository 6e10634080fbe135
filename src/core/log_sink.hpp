#pragma once

#include <string_view>

namespace tinyfaas {

// Where handler output goes, one line at a time.
class LogSink {
 public:
  virtual ~LogSink() = default;
  virtual void append(std::string_view function, std::string_view instance, std::string_view line) = 0;
};

}  // namespace tinyfaas
