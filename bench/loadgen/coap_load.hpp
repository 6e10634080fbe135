#pragma once
// CoAP clients: one UDP socket per client, one request in flight at a time.
// No retransmission (the thesis' client had none): a request or answer lost
// on the way fails the call at the timeout.

#include "client_job.hpp"
#include "coap_pdu.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/udp.hpp>

namespace tinyfaas::bench {

struct CoapPlan {
  CoapRequestSpec request;  // message id and token are set per call
  boost::asio::ip::udp::endpoint endpoint;
};

boost::asio::awaitable<void> runCoapClient(ClientJob& job, const CoapPlan& plan);

}  // namespace tinyfaas::bench
