#include "frontend/grpc/grpc_log.hpp"

#include <grpc/support/log.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>

#include <google/protobuf/stubs/logging.h>
#include <spdlog/spdlog.h>

namespace tinyfaas::grpcfe {
namespace {

// Peers can cause warnings at will (malformed frames, invalid UTF-8 in a
// request, which protobuf logs per message), so at most this many per second
// reach the log; gRPC logs from many threads, hence the atomics.
constexpr std::uint32_t kWarningsPerSecond = 20;
std::atomic<std::int64_t> windowSecond{0};
std::atomic<std::uint32_t> inWindow{0};
std::atomic<std::uint32_t> suppressed{0};

bool admitWarning() {
  const std::int64_t now =
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now().time_since_epoch()).count();
  std::int64_t seen = windowSecond.load(std::memory_order_relaxed);
  if (now != seen && windowSecond.compare_exchange_strong(seen, now, std::memory_order_relaxed)) {
    inWindow.store(0, std::memory_order_relaxed);
    if (const std::uint32_t dropped = suppressed.exchange(0, std::memory_order_relaxed); dropped > 0)
      spdlog::warn("grpc: {} more log lines suppressed", dropped);
  }
  if (inWindow.fetch_add(1, std::memory_order_relaxed) < kWarningsPerSecond) return true;
  suppressed.fetch_add(1, std::memory_order_relaxed);
  return false;
}

void emit(spdlog::level::level_enum level, std::string_view source, std::string_view text) {
  if (!spdlog::should_log(level)) return;
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.remove_suffix(1);
  if (level >= spdlog::level::warn && level < spdlog::level::critical && !admitWarning()) return;
  spdlog::log(level, "{}: {}", source, text);
}

void onGrpcLog(gpr_log_func_args* args) {
  // gRPC's ERRORs include things a peer or a failing bind causes (the bind
  // failure is reported by create() itself, with the address): warnings here.
  spdlog::level::level_enum level = spdlog::level::trace;
  switch (args->severity) {
    case GPR_LOG_SEVERITY_ERROR: level = spdlog::level::warn; break;
    case GPR_LOG_SEVERITY_INFO: level = spdlog::level::debug; break;
    case GPR_LOG_SEVERITY_DEBUG: level = spdlog::level::trace; break;
  }
  emit(level, "grpc", args->message != nullptr ? args->message : "");
}

void onProtobufLog(google::protobuf::LogLevel protobufLevel, const char*, int, const std::string& message) {
  // FATAL aborts inside protobuf after this returns; say it loudly first.
  spdlog::level::level_enum level = spdlog::level::debug;
  switch (protobufLevel) {
    case google::protobuf::LOGLEVEL_INFO: level = spdlog::level::debug; break;
    case google::protobuf::LOGLEVEL_WARNING: level = spdlog::level::warn; break;
    case google::protobuf::LOGLEVEL_ERROR: level = spdlog::level::warn; break;
    case google::protobuf::LOGLEVEL_FATAL: level = spdlog::level::critical; break;
  }
  emit(level, "protobuf", message);
}

}  // namespace

void routeGrpcLogsToSpdlog() {
  static std::once_flag once;
  std::call_once(once, [] {
    gpr_set_log_function(&onGrpcLog);
    google::protobuf::SetLogHandler(&onProtobufLog);
  });
}

}  // namespace tinyfaas::grpcfe
