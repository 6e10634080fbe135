#pragma once
// The libnats side of the cluster: one connection to the NATS servers
// (reconnecting forever, so that a node started while NATS is down joins
// once it is up), the JetStream key-value buckets, and the subjects calls
// are forwarded on.

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "cluster/cluster_transport.hpp"

struct __natsConnection;

namespace tinyfaas::cluster {

struct NatsOptions {
  std::vector<std::string> servers;  // nats://HOST:PORT
  std::string credentials;           // a .creds file; empty: none
  std::string clientName;            // shown by the servers' monitoring
};

class NatsTransport final : public KvTransport {
 public:
  // Does not wait for a server: a connection that is not up yet retries in
  // the background and the calls fail until it is.
  static Result<std::unique_ptr<NatsTransport>> connect(const NatsOptions& options);
  ~NatsTransport() override;
  NatsTransport(const NatsTransport&) = delete;
  NatsTransport& operator=(const NatsTransport&) = delete;

  Result<std::vector<KvEntry>> list(Bucket bucket) override;
  Result<std::optional<KvEntry>> get(Bucket bucket, const std::string& key) override;
  Result<std::uint64_t> put(Bucket bucket, const std::string& key, const std::string& value) override;
  Result<void> erase(Bucket bucket, const std::string& key) override;
  void announce() override;
  // Called on a libnats thread for every node's announce() (this one's
  // too); must only post. Empty: none (before its target goes away).
  void onAnnounce(std::function<void()> listener);

  bool connected() const;
  // The connection itself, for the call forwarding (thread-safe in libnats).
  __natsConnection* connection() const;

 private:
  struct State;
  explicit NatsTransport(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

}  // namespace tinyfaas::cluster
