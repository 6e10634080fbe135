#pragma once
// What a graceful shutdown needs from an endpoint that takes calls (the HTTP,
// CoAP and gRPC frontends, the management API).

#include <cstddef>
#include <string_view>

namespace tinyfaas {

// Every method runs on the thread the endpoint lives on (see its class).
class Drainable {
 public:
  virtual ~Drainable() = default;
  // From now on takes no new connection or call; calls already taken go on
  // and are answered as usual.
  virtual void stopAccepting() = 0;
  // Calls taken whose answer has not been handed to the client yet.
  virtual std::size_t callsInFlight() const = 0;
  // Answers given that may still need the endpoint open (CoAP retransmits a
  // confirmable answer until the client acknowledges it).
  virtual bool delivering() const { return false; }
  // Answers every call still in flight at once with an error that says
  // `reason` (503, 5.03, UNAVAILABLE); their results are dropped when they
  // come.
  virtual void cutShort(std::string_view reason) = 0;
};

}  // namespace tinyfaas
