#include "frontend/coap/download_table.hpp"

#include <algorithm>
#include <utility>

namespace tinyfaas::coap {
namespace {

constexpr std::size_t kMaxDownloads = 256;
constexpr std::size_t kMaxDownloadBytes = 32u << 20;

}  // namespace

void DownloadTable::remember(std::string id, std::shared_ptr<const std::string> body, coap_pdu_code_t code,
                             Clock::time_point now) {
  downloads_.erase(id);
  const auto held = [this] {
    std::size_t bytes = 0;
    for (const auto& [key, download] : downloads_) bytes += download.body->size();
    return bytes;
  };
  while (!downloads_.empty() && (downloads_.size() >= kMaxDownloads || held() + body->size() > kMaxDownloadBytes)) {
    downloads_.erase(std::min_element(downloads_.begin(), downloads_.end(), [](const auto& a, const auto& b) {
      return a.second.touched < b.second.touched;
    }));
  }
  downloads_[std::move(id)] = Download{std::move(body), code, now};
}

Download* DownloadTable::find(const std::string& id) {
  auto it = downloads_.find(id);
  return it == downloads_.end() ? nullptr : &it->second;
}

void DownloadTable::erase(const std::string& id) { downloads_.erase(id); }

Clock::time_point DownloadTable::expire(Clock::time_point now) {
  Clock::time_point oldest = Clock::time_point::max();
  for (auto it = downloads_.begin(); it != downloads_.end();) {
    if (it->second.touched + kUploadIdle <= now) {
      it = downloads_.erase(it);
    } else {
      oldest = std::min(oldest, it->second.touched);
      ++it;
    }
  }
  return oldest;
}

}  // namespace tinyfaas::coap
