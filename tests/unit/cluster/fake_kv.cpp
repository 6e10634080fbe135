#include "fake_kv.hpp"

namespace tinyfaas::cluster {

Result<std::vector<KvEntry>> FakeKv::list(Bucket bucket) {
  if (offline) return Failed{"not connected to NATS"};
  std::vector<KvEntry> out;
  for (const auto& [key, entry] : entries_)
    if (key.first == bucket) out.push_back(entry);
  return out;
}

Result<std::optional<KvEntry>> FakeKv::get(Bucket bucket, const std::string& key) {
  if (offline) return Failed{"not connected to NATS"};
  auto it = entries_.find({bucket, key});
  if (it == entries_.end()) return Result<std::optional<KvEntry>>(boost::system::in_place_value);
  return Result<std::optional<KvEntry>>(boost::system::in_place_value, it->second);
}

Result<std::uint64_t> FakeKv::put(Bucket bucket, const std::string& key, const std::string& value) {
  if (offline) return Failed{"not connected to NATS"};
  ++puts;
  entries_[{bucket, key}] = KvEntry{key, value, ++revision_};
  return revision_;
}

Result<void> FakeKv::erase(Bucket bucket, const std::string& key) {
  if (offline) return Failed{"not connected to NATS"};
  entries_.erase({bucket, key});
  return {};
}

}  // namespace tinyfaas::cluster
