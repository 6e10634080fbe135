#pragma once
// How often an asynchronous call of a function is tried (upload field
// "async"), shared by the manager that keeps it and the queue that applies it.

#include <chrono>

namespace tinyfaas {

struct RetryPolicy {
  int retries = 2;                         // attempts after the first
  std::chrono::milliseconds backoff{500};  // before the first retry; doubled for each later one
};

inline constexpr int kMaxRetries = 100;
inline constexpr int kMinBackoffMs = 10;
inline constexpr int kMaxBackoffMs = 3'600'000;

}  // namespace tinyfaas
