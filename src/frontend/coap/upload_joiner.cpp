#include "frontend/coap/upload_joiner.hpp"

#include <algorithm>
#include <utility>

namespace tinyfaas::coap {

UploadJoiner::Step UploadJoiner::add(std::string id, const Block& block, Clock::time_point now, std::string& body) {
  const std::size_t chunk = std::size_t{1} << (block.szx + 4);
  const std::size_t offset = static_cast<std::size_t>(block.num) * chunk;
  auto it = uploads_.find(id);
  if (block.num == 0) {
    if (block.size1 && *block.size1 > limits_.maxPayloadBytes) {
      if (it != uploads_.end()) drop(it);
      return Step::tooLarge;
    }
    if (it == uploads_.end()) {
      if (uploads_.size() >= limits_.maxUploads) return Step::tooManyUploads;
      it = uploads_.emplace(std::move(id), Upload{}).first;
    }
    bytes_ -= it->second.body.size();
    it->second.body.clear();
  } else if (it == uploads_.end()) {
    return Step::notStarted;
  }
  Upload& upload = it->second;
  upload.touched = now;
  const std::size_t length = block.data.size();
  // A retransmitted block that is already in.
  const bool repeat = offset + length == upload.body.size() && block.num != 0 && block.more;
  if (!repeat) {
    if (offset != upload.body.size() || (block.more && length != chunk)) {
      drop(it);
      return Step::outOfOrder;
    }
    if (upload.body.size() + length > limits_.maxPayloadBytes) {
      drop(it);
      return Step::tooLarge;
    }
    if (length > limits_.maxUploadBytes - bytes_) {
      drop(it);
      return Step::tooManyBytes;
    }
    upload.body.append(block.data);
    bytes_ += length;
  }
  if (block.more) return Step::more;
  bytes_ -= upload.body.size();
  body = std::move(upload.body);
  uploads_.erase(it);
  return Step::complete;
}

Clock::time_point UploadJoiner::expire(Clock::time_point now) {
  Clock::time_point oldest = Clock::time_point::max();
  for (auto it = uploads_.begin(); it != uploads_.end();) {
    if (it->second.touched + kUploadIdle <= now) {
      bytes_ -= it->second.body.size();
      it = uploads_.erase(it);
    } else {
      oldest = std::min(oldest, it->second.touched);
      ++it;
    }
  }
  return oldest;
}

void UploadJoiner::clear() {
  uploads_.clear();
  bytes_ = 0;
}

void UploadJoiner::drop(Uploads::iterator it) {
  bytes_ -= it->second.body.size();
  uploads_.erase(it);
}

}  // namespace tinyfaas::coap
