#pragma once
// Joins block-wise (RFC 7959 Block1) uploads to the CoAP frontend, bounded
// in their number, each one's size and their bytes together.
//
// Why not libcoap's own joining: with COAP_BLOCK_SINGLE_BODY libcoap 4.3.1
// allocates whatever Size1 the client announces (up to 4 GiB) and buffers
// the whole body before the handler could apply a limit, and without Size1
// it hands each block over as if it were the whole body.
//
// Blocks are matched by peer and function name (transferId(); RFC 7959 2.4:
// the request URI), not by token, which clients change per block. Plain
// data, no libcoap; owned by the frontend's loop thread.

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "frontend/coap/exchange_table.hpp"

namespace tinyfaas::coap {

// How long an upload may pause between blocks (RFC 7252 MAX_TRANSMIT_WAIT
// is 93 s) before it is dropped.
inline constexpr auto kUploadIdle = std::chrono::seconds(93);

struct UploadLimits {
  std::size_t maxPayloadBytes = 1 << 20;   // one upload's body
  std::size_t maxUploads = 64;             // uploads being joined at once
  std::size_t maxUploadBytes = 32u << 20;  // their bytes together
};

class UploadJoiner {
 public:
  // One Block1 block as the request carried it.
  struct Block {
    unsigned num = 0;
    bool more = false;
    unsigned szx = 0;
    std::optional<std::uint64_t> size1;  // the announced total, if any
    std::string_view data;
  };

  enum class Step {
    complete,        // the last block is in: `body` holds the upload
    more,            // taken; the client sends the next block (2.31 Continue)
    tooLarge,        // over maxPayloadBytes (announced or reached): dropped
    tooManyUploads,  // a new upload past maxUploads
    tooManyBytes,    // past maxUploadBytes: this upload gives way, others go on
    notStarted,      // a later block of an upload we do not know
    outOfOrder,      // a gap, or a short block that is not the last: dropped
  };

  explicit UploadJoiner(UploadLimits limits) : limits_(limits) {}

  Step add(std::string id, const Block& block, Clock::time_point now, std::string& body);

  // Drops uploads idle for kUploadIdle; returns when the oldest one left was
  // last touched (time_point::max() when none is left).
  Clock::time_point expire(Clock::time_point now);

  void clear();

 private:
  struct Upload {
    std::string body;
    Clock::time_point touched;
  };
  using Uploads = std::map<std::string, Upload>;

  void drop(Uploads::iterator it);

  UploadLimits limits_;
  Uploads uploads_;
  std::size_t bytes_ = 0;  // of every upload in uploads_
};

}  // namespace tinyfaas::coap
