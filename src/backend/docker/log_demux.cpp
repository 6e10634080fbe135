#include "backend/docker/log_demux.hpp"

#include <algorithm>

namespace tinyfaas::docker {

LogDemuxer::LogDemuxer(Framing framing, LineHandler onLine, std::size_t maxLineBytes)
    : framing_(framing), onLine_(std::move(onLine)), maxLineBytes_(std::max<std::size_t>(maxLineBytes, 1)) {}

bool LogDemuxer::feed(std::string_view bytes) {
  if (broken_) return false;
  if (framing_ == Framing::raw) {
    payload(1, bytes);
    return true;
  }
  while (!bytes.empty()) {
    if (remaining_ == 0) {
      const std::size_t take = std::min(bytes.size(), header_.size() - headerFill_);
      std::copy_n(bytes.begin(), take, header_.begin() + static_cast<std::ptrdiff_t>(headerFill_));
      headerFill_ += take;
      bytes.remove_prefix(take);
      if (headerFill_ < header_.size()) break;
      headerFill_ = 0;
      if (header_[0] > 2 || header_[1] != 0 || header_[2] != 0 || header_[3] != 0) {
        broken_ = true;
        return false;
      }
      current_ = header_[0];
      remaining_ = (std::uint32_t{header_[4]} << 24) | (std::uint32_t{header_[5]} << 16) |
                   (std::uint32_t{header_[6]} << 8) | std::uint32_t{header_[7]};
      continue;  // a zero-length frame is legal and carries nothing
    }
    const std::size_t take = std::min<std::size_t>(bytes.size(), remaining_);
    payload(current_, bytes.substr(0, take));
    remaining_ -= static_cast<std::uint32_t>(take);
    bytes.remove_prefix(take);
  }
  return true;
}

void LogDemuxer::payload(int stream, std::string_view bytes) {
  std::string& line = partial_[static_cast<std::size_t>(stream)];
  while (!bytes.empty()) {
    const auto newline = bytes.find('\n');
    const std::size_t upto = newline == std::string_view::npos ? bytes.size() : newline;
    const std::size_t room = maxLineBytes_ - line.size();
    if (upto > room) {
      line.append(bytes.substr(0, room));
      bytes.remove_prefix(room);
      emit(stream);
      continue;
    }
    line.append(bytes.substr(0, upto));
    if (newline == std::string_view::npos) break;
    bytes.remove_prefix(upto + 1);
    emit(stream);
  }
  if (line.size() >= maxLineBytes_) emit(stream);
}

void LogDemuxer::emit(int stream) {
  std::string& line = partial_[static_cast<std::size_t>(stream)];
  if (!line.empty() && line.back() == '\r') line.pop_back();
  if (onLine_) onLine_(stream, line);
  line.clear();
}

void LogDemuxer::finish() {
  for (int stream = 0; stream < 3; ++stream) {
    if (!partial_[static_cast<std::size_t>(stream)].empty()) emit(stream);
  }
}

}  // namespace tinyfaas::docker
