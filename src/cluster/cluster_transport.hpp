#pragma once
// What the cluster needs from NATS JetStream, as a small interface: the
// registry logic (registry.hpp) runs against it, so unit tests give it an
// in-memory fake and the daemon the libnats one (nats_transport.hpp).

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <boost/system/result.hpp>

namespace tinyfaas::cluster {

// The key-value buckets the cluster keeps.
enum class Bucket {
  functions,  // function name -> its record (function_record.hpp)
  code,       // code hash -> chunk count; "HASH.I" -> chunk I of the zip
  nodes,      // node name -> its heartbeat (node_status.hpp)
};

struct KvEntry {
  std::string key;
  std::string value;
  std::uint64_t revision = 0;
};

template <class T>
using Result = boost::system::result<T, std::string>;

// An error for any Result: `return Failed{"why"};`. Needed where the value
// type can itself be made from a string (a std::string, an aggregate whose
// first member is one), which makes returning a bare string ambiguous.
struct Failed {
  std::string message;
  template <class T>
  operator Result<T>() && {  // NOLINT(google-explicit-constructor): the point of it
    return Result<T>(boost::system::in_place_error, std::move(message));
  }
};

// Blocking calls; an implementation is used from one thread only (the
// cluster's I/O thread), so it needs no locking of its own.
class KvTransport {
 public:
  virtual ~KvTransport() = default;
  // Every live entry of the bucket.
  virtual Result<std::vector<KvEntry>> list(Bucket bucket) = 0;
  // nullopt when the key does not exist (or was deleted).
  virtual Result<std::optional<KvEntry>> get(Bucket bucket, const std::string& key) = 0;
  // Returns the new revision.
  virtual Result<std::uint64_t> put(Bucket bucket, const std::string& key, const std::string& value) = 0;
  virtual Result<void> erase(Bucket bucket, const std::string& key) = 0;
  // Tells every node that the registry or a heartbeat changed, so that it
  // reads them at once instead of at its next round; best effort.
  virtual void announce() {}
};

}  // namespace tinyfaas::cluster
