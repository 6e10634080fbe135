#include "frontend/coap/libcoap_log.hpp"

#include <coap3/coap.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <string_view>

#include <spdlog/spdlog.h>

namespace tinyfaas::coap {
namespace {

spdlog::level::level_enum toSpdlog(coap_log_t level) {
  switch (level) {
    case LOG_EMERG:
    case LOG_CRIT:
    case LOG_ERR: return spdlog::level::err;
    // libcoap 4.3.1 logs "got RST for mid=..." at LOG_ALERT: a peer can cause
    // it at will, so it is no more than a warning here.
    case LOG_ALERT:
    case LOG_WARNING: return spdlog::level::warn;
    // NOTICE and INFO include per-message lines ("Retransmit async
    // response"); they must not reach an info-level log.
    case LOG_NOTICE:
    case LOG_INFO: return spdlog::level::debug;
    default: return spdlog::level::trace;
  }
}

void onLibcoapLog(coap_log_t level, const char* message) {
  // A failing bind reports through the log before coap_new_endpoint returns;
  // keep errno intact so the caller can still name the reason.
  const int savedErrno = errno;
  const spdlog::level::level_enum target = toSpdlog(level);
  if (!spdlog::should_log(target)) {
    errno = savedErrno;
    return;
  }
  std::string_view text = message != nullptr ? message : "";
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.remove_suffix(1);

  // Warnings are mostly caused by peers (e.g. "discard malformed PDU", one per
  // bad datagram): cap them so a flood cannot flood the log too.
  if (target >= spdlog::level::warn) {
    thread_local std::int64_t windowStart = 0;
    thread_local unsigned inWindow = 0;
    thread_local unsigned suppressed = 0;
    constexpr unsigned kPerSecond = 20;
    const std::int64_t nowSecond =
        std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now().time_since_epoch()).count();
    if (nowSecond != windowStart) {
      if (suppressed > 0) spdlog::warn("libcoap: {} more log lines suppressed", suppressed);
      windowStart = nowSecond;
      inWindow = 0;
      suppressed = 0;
    }
    if (++inWindow > kPerSecond) {
      ++suppressed;
      errno = savedErrno;
      return;
    }
  }
  spdlog::log(target, "libcoap: {}", text);
  errno = savedErrno;
}

}  // namespace

void routeLibcoapLogsToSpdlog(int libcoapLevel) {
  coap_set_log_handler(onLibcoapLog);
  coap_set_log_level(static_cast<coap_log_t>(libcoapLevel));
}

}  // namespace tinyfaas::coap
