#include "cluster/nats_transport.hpp"

#include <algorithm>
#include <array>
#include <mutex>

#include <nats/nats.h>
#include <spdlog/spdlog.h>

namespace tinyfaas::cluster {

namespace {

constexpr std::array kBucketNames = {"tinyfaas-functions", "tinyfaas-code", "tinyfaas-nodes"};
// Code chunks are kCodeChunkBytes; a value must stay below max_payload.
constexpr int kMaxValueBytes = 1000 * 1000;

std::string failure(const char* what, natsStatus status) {
  const char* detail = nats_GetLastError(nullptr);
  return std::string(what) + ": " + natsStatus_GetText(status) +
         (detail && *detail ? std::string(" (") + detail + ")" : "");
}

}  // namespace

constexpr const char* kChangedSubject = "tinyfaas.cluster.changed";

struct NatsTransport::State {
  natsOptions* options = nullptr;
  natsSubscription* changes = nullptr;
  // Shared with the subscription's handler, which may run once more after
  // the unsubscribe; released when the subscription completes.
  struct Listener {
    std::mutex mutex;  // set on the management thread, called on libnats'
    std::function<void()> call;
  };
  std::shared_ptr<Listener> listener = std::make_shared<Listener>();
  natsConnection* connection = nullptr;
  jsCtx* js = nullptr;
  std::array<kvStore*, kBucketNames.size()> buckets{};

  ~State() {
    if (changes) {
      natsSubscription_Unsubscribe(changes);
      natsSubscription_Destroy(changes);
    }
    for (kvStore* kv : buckets)
      if (kv) kvStore_Destroy(kv);
    if (js) jsCtx_Destroy(js);
    if (connection) {
      natsConnection_Close(connection);
      natsConnection_Destroy(connection);
    }
    if (options) natsOptions_Destroy(options);
  }

  // The bucket's handle, made (and the bucket created, with one replica per
  // server up to 3) on first use once connected.
  Result<kvStore*> bucket(Bucket which) {
    const auto index = static_cast<std::size_t>(which);
    if (buckets[index]) return buckets[index];
    if (!js) {
      if (natsStatus s = natsConnection_JetStream(&js, connection, nullptr); s != NATS_OK)
        return Failed{failure("JetStream", s)};
    }
    kvStore* kv = nullptr;
    natsStatus s = js_KeyValue(&kv, js, kBucketNames[index]);
    if (s == NATS_NOT_FOUND) {
      char** servers = nullptr;
      int count = 0;
      if (natsConnection_GetServers(connection, &servers, &count) == NATS_OK) {
        for (int i = 0; i < count; ++i) free(servers[i]);
        free(servers);
      }
      kvConfig config;
      kvConfig_Init(&config);
      config.Bucket = kBucketNames[index];
      config.Replicas = std::clamp(count, 1, 3);
      config.History = 1;
      config.MaxValueSize = kMaxValueBytes;
      s = js_CreateKeyValue(&kv, js, &config);
    }
    if (s != NATS_OK) return Failed{failure(kBucketNames[index], s)};
    buckets[index] = kv;
    return kv;
  }
};

Result<std::unique_ptr<NatsTransport>> NatsTransport::connect(const NatsOptions& options) {
  auto state = std::make_unique<State>();
  if (natsStatus s = natsOptions_Create(&state->options); s != NATS_OK) return Failed{failure("NATS options", s)};
  std::vector<const char*> servers;
  for (const auto& server : options.servers) servers.push_back(server.c_str());
  natsOptions* o = state->options;
  if (natsStatus s = natsOptions_SetServers(o, servers.data(), static_cast<int>(servers.size())); s != NATS_OK)
    return Failed{failure("--cluster", s)};
  natsOptions_SetName(o, options.clientName.c_str());
  natsOptions_SetMaxReconnect(o, -1);
  natsOptions_SetReconnectWait(o, 500);
  natsOptions_SetTimeout(o, 2000);
  // Forwarded calls and their answers go out at once: by default libnats
  // leaves publishes to a flusher thread, which added ~2 ms to each call.
  natsOptions_SetSendAsap(o, true);
  // Offline first: a node started while NATS is down serves its own
  // functions and joins once a server answers.
  // (With no callback the connect would block until a server answers.)
  natsOptions_SetRetryOnFailedConnect(
      o, true, [](natsConnection*, void*) { spdlog::info("cluster: connected to a NATS server"); }, nullptr);
  if (!options.credentials.empty()) {
    if (natsStatus s = natsOptions_SetUserCredentialsFromFiles(o, options.credentials.c_str(), nullptr); s != NATS_OK)
      return Failed{failure("--cluster-credentials", s)};
  }
  natsStatus s = natsConnection_Connect(&state->connection, o);
  if (s != NATS_OK && s != NATS_NOT_YET_CONNECTED) return Failed{failure("connecting to NATS", s)};
  auto onChange = [](natsConnection*, natsSubscription*, natsMsg* msg, void* closure) {
    natsMsg_Destroy(msg);
    auto& listener = **static_cast<std::shared_ptr<State::Listener>*>(closure);
    std::function<void()> call;
    {
      std::lock_guard lock(listener.mutex);
      call = listener.call;
    }
    if (call) call();
  };
  auto* closure = new std::shared_ptr<State::Listener>(state->listener);
  if (natsConnection_Subscribe(&state->changes, state->connection, kChangedSubject, onChange, closure) != NATS_OK) {
    state->changes = nullptr;
    delete closure;
  } else {
    natsSubscription_SetOnCompleteCB(
        state->changes, [](void* done) { delete static_cast<std::shared_ptr<State::Listener>*>(done); }, closure);
  }
  return std::unique_ptr<NatsTransport>(new NatsTransport(std::move(state)));
}

NatsTransport::NatsTransport(std::unique_ptr<State> state) : state_(std::move(state)) {}
NatsTransport::~NatsTransport() = default;

bool NatsTransport::connected() const {
  return natsConnection_Status(state_->connection) == NATS_CONN_STATUS_CONNECTED;
}

natsConnection* NatsTransport::connection() const { return state_->connection; }

Result<std::vector<KvEntry>> NatsTransport::list(Bucket which) {
  if (!connected()) return Failed{"not connected to NATS"};
  auto kv = state_->bucket(which);
  if (!kv) return Failed{kv.error()};
  kvKeysList keys{};
  natsStatus s = kvStore_Keys(&keys, *kv, nullptr);
  if (s == NATS_NOT_FOUND) return std::vector<KvEntry>{};
  if (s != NATS_OK) return Failed{failure("listing keys", s)};
  std::vector<KvEntry> out;
  std::string error;
  for (int i = 0; i < keys.Count && error.empty(); ++i) {
    auto entry = get(which, keys.Keys[i]);
    if (!entry) {
      error = entry.error();
    } else if (*entry) {
      out.push_back(std::move(**entry));
    }
  }
  kvKeysList_Destroy(&keys);
  if (!error.empty()) return Failed{error};
  return out;
}

Result<std::optional<KvEntry>> NatsTransport::get(Bucket which, const std::string& key) {
  if (!connected()) return Failed{"not connected to NATS"};
  auto kv = state_->bucket(which);
  if (!kv) return Failed{kv.error()};
  kvEntry* entry = nullptr;
  natsStatus s = kvStore_Get(&entry, *kv, key.c_str());
  if (s == NATS_NOT_FOUND) return Result<std::optional<KvEntry>>(boost::system::in_place_value);
  if (s != NATS_OK) return Failed{failure("reading a key", s)};
  KvEntry out{
      key,
      std::string(static_cast<const char*>(kvEntry_Value(entry)), static_cast<std::size_t>(kvEntry_ValueLen(entry))),
      kvEntry_Revision(entry)};
  kvEntry_Destroy(entry);
  return Result<std::optional<KvEntry>>(boost::system::in_place_value, std::move(out));
}

Result<std::uint64_t> NatsTransport::put(Bucket which, const std::string& key, const std::string& value) {
  if (!connected()) return Failed{"not connected to NATS"};
  auto kv = state_->bucket(which);
  if (!kv) return Failed{kv.error()};
  std::uint64_t revision = 0;
  natsStatus s = kvStore_Put(&revision, *kv, key.c_str(), value.data(), static_cast<int>(value.size()));
  if (s != NATS_OK) return Failed{failure("writing a key", s)};
  return revision;
}

Result<void> NatsTransport::erase(Bucket which, const std::string& key) {
  if (!connected()) return Failed{"not connected to NATS"};
  auto kv = state_->bucket(which);
  if (!kv) return Failed{kv.error()};
  if (natsStatus s = kvStore_Delete(*kv, key.c_str()); s != NATS_OK) return Failed{failure("deleting a key", s)};
  return {};
}

void NatsTransport::announce() { natsConnection_PublishString(state_->connection, kChangedSubject, ""); }

void NatsTransport::onAnnounce(std::function<void()> listener) {
  std::lock_guard lock(state_->listener->mutex);
  state_->listener->call = std::move(listener);
}

}  // namespace tinyfaas::cluster
