#pragma once
// libcoap's context and UDP endpoint, joined to an asio loop: libcoap's epoll
// fd is watched by asio and drained on the loop's thread, and libcoap's
// time-driven work (retransmissions, triggered asyncs, session and
// block-transfer expiry) runs from a steady timer. libcoap 4.3.1 is not
// thread-safe, so everything here runs on that one thread.
//
// Shared ownership only so that asio completions can hold a weak reference:
// one that outlives stop() or the owner finds it expired or stopped.

#include <coap3/coap.h>

#include <cstdint>
#include <memory>
#include <string>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/system/result.hpp>

#include "frontend/coap/coap_frontend.hpp"
#include "frontend/coap/exchange_table.hpp"

namespace tinyfaas::coap {

class LibcoapLoop : public std::enable_shared_from_this<LibcoapLoop> {
 public:
  explicit LibcoapLoop(boost::asio::any_io_executor executor);
  ~LibcoapLoop() { stop(); }

  // Creates the context (its app data is `appData`) and binds the UDP
  // endpoint of `options`. Resources go in between open() and watch().
  boost::system::result<void, std::string> open(const CoapOptions& options, void* appData);
  // Starts draining libcoap's descriptor on the loop.
  boost::system::result<void, std::string> watch();
  // Stops watching and frees the context (and with it every session).
  void stop();

  coap_context_t* context() const { return context_; }
  // The UDP port actually bound.
  std::uint16_t port() const { return port_; }

  // Runs libcoap's time-driven work now and arms the timer for the next.
  void refreshTimer();

 private:
  static std::uint16_t boundPort(coap_endpoint_t* endpoint);
  void tuneEndpointSocket(int family, std::size_t bytes) const;
  void freeContext();
  void waitReadable();
  void drain();

  boost::asio::any_io_executor executor_;
  coap_context_t* context_ = nullptr;
  std::uint16_t port_ = 0;
  bool stopped_ = false;
  boost::asio::posix::stream_descriptor fd_;
  boost::asio::steady_timer timer_;
  bool timerArmed_ = false;
  Clock::time_point timerDue_{};
  Clock::time_point lastRefresh_{};
};

}  // namespace tinyfaas::coap
