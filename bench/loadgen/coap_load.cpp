#include "coap_load.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <array>
#include <random>
#include <vector>

namespace tinyfaas::bench {
namespace asio = boost::asio;
using namespace asio::experimental::awaitable_operators;

namespace {

constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);
// Above one CoAP datagram (RFC 7252 suggests 1152 bytes): larger answers are
// block-wise, which this client does not follow, and a truncated read is
// still parsed as what arrived.
constexpr std::size_t kReceiveBuffer = 8192;

std::string codeText(std::uint8_t code) {
  const unsigned detail = code & 0x1F;
  return std::to_string(code >> 5) + (detail < 10 ? ".0" : ".") + std::to_string(detail);
}

}  // namespace

asio::awaitable<void> runCoapClient(ClientJob& job, const CoapPlan& plan) {
  const auto executor = co_await asio::this_coro::executor;
  asio::ip::udp::socket socket(executor);
  asio::steady_timer timer(executor);
  boost::system::error_code ec;
  socket.open(plan.endpoint.protocol(), ec);
  // A connected UDP socket drops datagrams from anyone else and reports
  // ICMP port-unreachable as connection_refused instead of a silent wait.
  if (!ec) socket.connect(plan.endpoint, ec);
  if (ec) {
    job.noteError("UDP socket: " + ec.message());
    for (std::uint32_t seq = 0; seq < job.calls; ++seq) job.record(seq, Clock::now(), Clock::now(), false, false);
    co_return;
  }

  // Random starting points, so that a server's duplicate detection, which
  // keys on (peer, message id), never sees a message id of a previous run
  // that used the same ephemeral port.
  std::mt19937 random(std::random_device{}() ^ job.id);
  auto messageId = static_cast<std::uint16_t>(random());
  std::uint32_t tokenCounter = random();
  std::vector<std::uint8_t> received(kReceiveBuffer);

  auto acknowledge = [&](std::uint16_t id) -> asio::awaitable<void> {
    if (auto ack = encodeCoapEmpty(CoapType::ack, id)) co_await socket.async_send(asio::buffer(*ack), kTuple);
  };

  for (std::uint32_t seq = 0; seq < job.calls; ++seq) {
    const auto start = Clock::now();
    if (!job.mayStart(start)) break;
    ++messageId;
    ++tokenCounter;
    const std::array<std::uint8_t, 4> token = {
        static_cast<std::uint8_t>(tokenCounter >> 24), static_cast<std::uint8_t>(tokenCounter >> 16),
        static_cast<std::uint8_t>(tokenCounter >> 8), static_cast<std::uint8_t>(tokenCounter)};
    const auto datagram = encodeCoapRequest(plan.request, messageId, token);
    if (!datagram) {
      job.noteError("cannot encode the CoAP request (payload too large?)");
      job.record(seq, start, Clock::now(), false, false);
      continue;
    }
    bool ok = false;
    bool answered = false;
    auto [sendError, sent] = co_await socket.async_send(asio::buffer(*datagram), kTuple);
    if (sendError) {
      job.noteError("send: " + sendError.message());
      job.record(seq, start, Clock::now(), false, false);
      continue;
    }

    timer.expires_at(start + job.timeout);
    for (;;) {
      auto outcome = co_await (socket.async_receive(asio::buffer(received), kTuple) || timer.async_wait(kTuple));
      if (outcome.index() == 1) {
        job.noteError("no answer within " + std::to_string(job.timeout.count()) + " ms");
        break;
      }
      auto [receiveError, length] = std::get<0>(outcome);
      if (receiveError) {
        // connection_refused: nothing listens on the port (ICMP); a fast
        // failure rather than a wait for the timeout.
        job.noteError("receive: " + receiveError.message());
        break;
      }
      const auto message = parseCoapMessage({received.data(), length}, false);
      if (!message) continue;
      const bool ours = std::ranges::equal(message->tokenBytes(), token);
      if (message->type == CoapType::ack && message->messageId == messageId) {
        // An empty ACK: the server accepted the request and will send the
        // answer later as a separate CON or NON message.
        if (message->isEmpty()) continue;
        if (!ours) continue;
        answered = true;
        ok = message->isSuccess();
        if (!ok) job.noteError("CoAP code " + codeText(message->code));
        break;
      }
      if (message->type == CoapType::rst && message->messageId == messageId) {
        answered = true;
        job.noteError("the server reset the request");
        break;
      }
      if (message->type == CoapType::con) co_await acknowledge(message->messageId);
      // A late answer to a call that already timed out has another token.
      if ((message->type == CoapType::con || message->type == CoapType::non) && ours && !message->isEmpty()) {
        answered = true;
        ok = message->isSuccess();
        if (!ok) job.noteError("CoAP code " + codeText(message->code));
        break;
      }
    }
    job.record(seq, start, Clock::now(), ok, answered);
  }
  timer.cancel();
}

}  // namespace tinyfaas::bench
