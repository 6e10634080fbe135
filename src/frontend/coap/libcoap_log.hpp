#pragma once
// libcoap's log lines, routed into spdlog.

namespace tinyfaas::coap {

// Installs the handler (process-wide: libcoap has one) and sets libcoap's
// threshold, a syslog level (LOG_WARNING = 4 by default).
void routeLibcoapLogsToSpdlog(int libcoapLevel);

}  // namespace tinyfaas::coap
