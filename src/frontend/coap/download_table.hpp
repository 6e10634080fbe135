#pragma once
// Block-wise (RFC 7959 Block2) answers to sources that have not proven their
// address, served by the CoAP frontend rather than by libcoap, whose first
// block carries ETag and Size2 and would not fit three times a small
// request. Keyed by transferId() (peer and function name); bounded in count
// and bytes, the least recently used going first (its client gets 4.00 for
// its next block and has to call again). Owned by the frontend's loop thread.

#include <coap3/coap.h>

#include <cstddef>
#include <map>
#include <memory>
#include <string>

#include "frontend/coap/exchange_table.hpp"
#include "frontend/coap/upload_joiner.hpp"

namespace tinyfaas::coap {

struct Download {
  std::shared_ptr<const std::string> body;
  coap_pdu_code_t code = COAP_RESPONSE_CODE_CONTENT;
  Clock::time_point touched;
};

class DownloadTable {
 public:
  // Replaces any download under `id`, making room first.
  void remember(std::string id, std::shared_ptr<const std::string> body, coap_pdu_code_t code, Clock::time_point now);
  // The download under `id`, or nullptr.
  Download* find(const std::string& id);
  void erase(const std::string& id);

  // Drops downloads idle for kUploadIdle (as long as an upload may pause);
  // returns when the oldest one left was last touched (time_point::max()
  // when none is left).
  Clock::time_point expire(Clock::time_point now);
  void clear() { downloads_.clear(); }

 private:
  std::map<std::string, Download> downloads_;
};

}  // namespace tinyfaas::coap
