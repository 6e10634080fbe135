#pragma once
// The CoAP frontend's state and its jobs, one file each:
//   coap_server.cpp       lifetime (start, stop, draining), per-function
//                         resources, and the sweep timer (piggy-back window,
//                         call deadlines, expiry of dedup state and transfers)
//   request_handling.cpp  a request in: duplicates, checks, block-wise
//                         uploads, address verification, the call started
//   answer_delivery.cpp   a result out: piggy-backed, separate, block-wise
// with libcoap's loop in libcoap_loop.*, Block1 joining in upload_joiner.*
// and Block2 answers to unverified sources in download_table.*.
//
// Lives on the data-plane thread that runs `executor_` and is touched only
// there (libcoap 4.3.1 has no locking). Shared ownership only so that asio
// and co_spawn completions can hold a weak reference: one that outlives
// stop() or the frontend finds it expired or stopped and does nothing.

#include <coap3/coap.h>

#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/system/result.hpp>

#include "core/invoker.hpp"
#include "frontend/coap/coap_frontend.hpp"
#include "frontend/coap/download_table.hpp"
#include "frontend/coap/echo_challenge.hpp"
#include "frontend/coap/exchange_table.hpp"
#include "frontend/coap/libcoap_loop.hpp"
#include "frontend/coap/upload_joiner.hpp"

namespace tinyfaas::coap {

class Server : public std::enable_shared_from_this<Server> {
 public:
  Server(boost::asio::any_io_executor executor, Invoker& invoker, CoapOptions options);
  ~Server() { stop(); }

  boost::system::result<void, std::string> start();
  void stop();
  void stopAccepting() { draining_ = true; }
  std::size_t callsInFlight() const { return table_.inFlight(); }
  bool delivering() const;
  void cutShort(std::string_view reason);
  std::uint16_t port() const { return loop_->port(); }
  CoapStats stats() const;

 private:
  struct Due {
    ExchangeRef ref;
    Clock::time_point at;
  };

  // Completion of one call, run on the loop by co_spawn. Holds only a weak
  // reference: the frontend may have been stopped and destroyed meanwhile.
  struct CallDone {
    std::weak_ptr<Server> server;
    ExchangeRef ref;
    void operator()(std::exception_ptr error, CallResult result);
  };

  // ---- coap_server.cpp
  static void registerHandlers(coap_resource_t* resource);
  coap_resource_t* resourceFor(const coap_pdu_t* request, coap_resource_t* fallback);
  void dropLibcoapState(Exchange& exchange);
  void armSweep(Clock::time_point due);
  void sweep();

  // ---- request_handling.cpp
  static void onNotAllowed(coap_resource_t*, coap_session_t* session, const coap_pdu_t*, const coap_string_t*,
                           coap_pdu_t* response) noexcept;
  static void onRequest(coap_resource_t* resource, coap_session_t* session, const coap_pdu_t* request,
                        const coap_string_t* query, coap_pdu_t* response) noexcept;
  void handleRequest(coap_resource_t* resource, coap_session_t* session, const coap_pdu_t* request,
                     const coap_string_t* query, coap_pdu_t* response);
  void answerDuplicate(Exchange& exchange, coap_resource_t* resource, coap_session_t* session,
                       const coap_pdu_t* request, const coap_string_t* query, coap_pdu_t* response, bool confirmable);
  bool collectBlock(const ExchangeKey& key, std::string_view name, const coap_pdu_t* request,
                    const coap_block_b_t& block, const std::uint8_t* data, std::size_t length, coap_pdu_t* response,
                    std::string& body);
  bool answerNextBlock(const ExchangeKey& key, std::string_view name, const coap_block_b_t& block,
                       coap_pdu_t* response);
  void rejectTooLarge(coap_pdu_t* response);
  bool verified(coap_session_t* session) const;
  void reject(coap_session_t* session, coap_pdu_t* response, coap_pdu_code_t code, std::string_view reason);
  void noteEcho(coap_session_t* session, const coap_pdu_t* request, const ExchangeKey& source);
  std::uint16_t answerLimitFor(coap_session_t* session, const coap_pdu_t* request) const;

  // ---- answer_delivery.cpp
  void onCallDone(ExchangeRef ref, std::exception_ptr error, CallResult result);
  void deliver(Exchange& exchange);
  bool answerDirectly(Exchange& exchange);
  void queueAnswer(ExchangeRef ref);
  void flush();
  void answerTriggered(coap_resource_t* resource, coap_session_t* session, const coap_pdu_t* request,
                       const coap_string_t* query, coap_pdu_t* response, coap_async_t* async);
  void fillAnswer(Exchange& exchange, coap_resource_t* resource, coap_session_t* session, const coap_pdu_t* request,
                  const coap_string_t* query, coap_pdu_t* response);
  void rememberDownload(Exchange& exchange, const coap_pdu_t* request, coap_pdu_code_t code);
  void finish(Exchange& exchange);
  static coap_pdu_type_t separateType(const Exchange& exchange);
  static bool addBlock1Echo(const Exchange& exchange, coap_pdu_t* pdu);

  boost::asio::any_io_executor executor_;
  Invoker& invoker_;
  CoapOptions options_;
  std::shared_ptr<LibcoapLoop> loop_;
  bool stopped_ = false;
  bool draining_ = false;  // new requests get 5.03

  boost::asio::steady_timer sweepTimer_;
  bool sweepArmed_ = false;
  Clock::time_point sweepDue_{};
  Clock::time_point lastDeadlineScan_{};

  ExchangeTable table_;
  EchoChallenge echo_;
  Clock::duration deadlineScan_;
  std::deque<Due> ackQueue_;
  UploadJoiner uploads_;
  DownloadTable downloads_;
  std::map<std::string, coap_resource_t*, std::less<>> named_;  // owned by the libcoap context
  std::vector<ExchangeRef> ready_;
  std::vector<ExchangeRef> batch_;
  bool flushPosted_ = false;
  CoapStats stats_;
};

}  // namespace tinyfaas::coap
