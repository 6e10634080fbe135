#pragma once
// CoAP (RFC 7252) endpoint: GET/POST coap://HOST/NAME runs function NAME.

#include <cstdint>
#include <memory>
#include <string>

#include <boost/asio/any_io_executor.hpp>
#include <boost/system/result.hpp>

#include "core/invoker.hpp"

namespace tinyfaas {

struct CoapOptions {
  std::string address = "0.0.0.0";
  std::uint16_t port = 5683;
  std::size_t maxPayloadBytes = 1 << 20;
};

// Owned by, and only touched on, the data-plane thread that runs `executor`:
// libcoap 4.3.1 is not thread-safe, so its epoll fd is joined to that loop.
class CoapFrontend {
 public:
  virtual ~CoapFrontend() = default;
  // The UDP port actually bound (useful when options.port was 0).
  virtual std::uint16_t port() const = 0;
  // Stops receiving; pending calls finish without replies.
  virtual void stop() = 0;

  static boost::system::result<std::unique_ptr<CoapFrontend>, std::string> create(
      boost::asio::any_io_executor executor, Invoker& invoker, CoapOptions options);
};

}  // namespace tinyfaas
