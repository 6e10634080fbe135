#pragma once
// An in-memory KvTransport: what NATS JetStream's buckets keep, with
// revisions, and a switch that makes every call fail as an unreachable
// server does.

#include <map>
#include <utility>

#include "cluster/cluster_transport.hpp"

namespace tinyfaas::cluster {

class FakeKv final : public KvTransport {
 public:
  Result<std::vector<KvEntry>> list(Bucket bucket) override;
  Result<std::optional<KvEntry>> get(Bucket bucket, const std::string& key) override;
  Result<std::uint64_t> put(Bucket bucket, const std::string& key, const std::string& value) override;
  Result<void> erase(Bucket bucket, const std::string& key) override;

  bool offline = false;
  std::size_t puts = 0;

 private:
  std::map<std::pair<Bucket, std::string>, KvEntry> entries_;
  std::uint64_t revision_ = 0;
};

}  // namespace tinyfaas::cluster
