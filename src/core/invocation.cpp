#include "core/invocation.hpp"

namespace tinyfaas {

std::string_view toString(CallStatus status) {
  switch (status) {
    case CallStatus::ok: return "ok";
    case CallStatus::notFound: return "not found";
    case CallStatus::functionError: return "function error";
    case CallStatus::unavailable: return "unavailable";
    case CallStatus::timeout: return "timeout";
    case CallStatus::overloaded: return "overloaded";
    case CallStatus::payloadTooLarge: return "payload too large";
  }
  return "unknown";
}

}  // namespace tinyfaas
