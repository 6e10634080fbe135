#include "cluster/call_forwarder.hpp"

#include <cstdlib>
#include <limits>
#include <optional>
#include <random>
#include <tuple>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <nats/nats.h>
#include <spdlog/spdlog.h>

#include "core/async.hpp"
#include "core/function_name.hpp"
#include "util/async_sync.hpp"

namespace tinyfaas::cluster {

namespace asio = boost::asio;
using namespace asio::experimental::awaitable_operators;

namespace {

constexpr std::string_view kCallPrefix = "tinyfaas.call.";
// Answer headers.
constexpr const char* kStatusHeader = "Tinyfaas-Status";
constexpr const char* kCodeHeader = "Tinyfaas-Code";
constexpr const char* kRetryableHeader = "Tinyfaas-Retryable";
constexpr std::string_view kFunctionHeaderPrefix = "Tinyfaas-H-";
// A message stays below NATS' max_payload (1 MiB by default): larger
// inputs and answers travel in chunks. An input announces its size
// (kBodyBytesHeader) and the node that takes the call asks for it on a
// subject of its own (kSendBodyHeader), so that all chunks reach that
// node; an answer's chunks go to the caller's reply subject in order.
constexpr std::size_t kChunkBytes = 512 * 1024;
constexpr std::string_view kControlPrefix = "Tinyfaas-Fwd-";
constexpr const char* kBodyBytesHeader = "Tinyfaas-Fwd-Body-Bytes";
constexpr const char* kSendBodyHeader = "Tinyfaas-Fwd-Send-Body";
constexpr const char* kChunkHeader = "Tinyfaas-Fwd-Chunk";
constexpr const char* kChunksHeader = "Tinyfaas-Fwd-Chunks";
// How long a node waits for the chunks of an input it asked for.
constexpr std::chrono::seconds kBodyWait{30};
constexpr int kLastStatus = static_cast<int>(CallStatus::payloadTooLarge);

std::string data(natsMsg* msg) {
  const char* bytes = natsMsg_GetData(msg);
  return bytes ? std::string(bytes, static_cast<std::size_t>(natsMsg_GetDataLength(msg))) : std::string();
}

// Every header of the message, in order, values of a repeated key each.
HeaderList headers(natsMsg* msg) {
  HeaderList out;
  const char** keys = nullptr;
  int count = 0;
  if (natsMsgHeader_Keys(msg, &keys, &count) != NATS_OK) return out;
  for (int i = 0; i < count; ++i) {
    const char** values = nullptr;
    int valueCount = 0;
    if (natsMsgHeader_Values(msg, keys[i], &values, &valueCount) != NATS_OK) continue;
    for (int j = 0; j < valueCount; ++j) out.emplace_back(keys[i], values[j]);
    free(values);
  }
  free(keys);
  return out;
}

std::optional<std::string> header(const HeaderList& list, std::string_view key) {
  for (const auto& [name, value] : list)
    if (name == key) return value;
  return std::nullopt;
}

std::uint64_t number(const HeaderList& list, std::string_view key, std::uint64_t otherwise) {
  const auto text = header(list, key);
  if (!text || text->empty() || text->size() > 19 || text->find_first_not_of("0123456789") != std::string::npos)
    return otherwise;
  return std::stoull(*text);
}

// The id after the last dot of a subject.
std::uint64_t lastToken(const char* subject) {
  const std::string text = subject ? subject : "";
  const std::string id = text.substr(text.rfind('.') + 1);
  if (id.empty() || id.size() > 19 || id.find_first_not_of("0123456789") != std::string::npos) return 0;
  return std::stoull(id);
}

CallResult unavailable(std::string reason) { return CallResult{CallStatus::unavailable, std::move(reason), true}; }

void publish(natsConnection* connection, const std::string& subject, std::string_view body, const HeaderList& list) {
  natsMsg* msg = nullptr;
  if (natsMsg_Create(&msg, subject.c_str(), nullptr, body.data(), static_cast<int>(body.size())) != NATS_OK) return;
  for (const auto& [name, value] : list) natsMsgHeader_Add(msg, name.c_str(), value.c_str());
  natsConnection_PublishMsg(connection, msg);
  natsMsg_Destroy(msg);
}

}  // namespace

struct CallForwarder::Pending {
  explicit Pending(asio::any_io_executor executor) : done(std::move(executor)) {}
  AsyncEvent done;
  std::string body;  // an input sent in chunks, until the taker asked for it
  std::optional<CallResult> result;
  std::uint64_t chunks = 0;  // of the answer, once its first chunk came
  std::uint64_t received = 0;
  bool noResponders = false;
};

// A forwarded call whose input is still coming in chunks.
struct Incoming {
  std::string reply;
  Invocation invocation;
  std::size_t bytes = 0;
};

// Reached from libnats' threads through the subscriptions' closures (each
// holds a shared_ptr to it, released when its subscription completes);
// everything but the executor is touched on the data plane only.
struct CallForwarder::Shared {
  asio::any_io_executor dataPlane;
  natsConnection* connection = nullptr;
  CallForwarder* owner = nullptr;  // null once the forwarder is gone
  std::size_t maxBodyBytes = 0;
  std::map<std::uint64_t, Pending*> pending;
  std::map<std::uint64_t, Incoming> incomingBodies;
  std::map<std::string, natsSubscription*> served;
  natsSubscription* replies = nullptr;
  natsSubscription* bodies = nullptr;
  std::string replyPrefix;  // "PREFIX." + call id
  std::string bodyPrefix;   // "PREFIX." + id of an input being received
  std::uint64_t nextId = 1;
  TaskGroup incoming;  // forwarded calls running here

  explicit Shared(asio::any_io_executor executor) : dataPlane(executor), incoming(std::move(executor)) {}

  void onReply(std::uint64_t id, bool noResponders, HeaderList list, std::string body) {
    auto it = pending.find(id);
    if (it == pending.end()) return;  // timed out meanwhile
    Pending& call = *it->second;
    if (noResponders) {
      call.noResponders = true;
      call.done.set();
      return;
    }
    if (auto sendTo = header(list, kSendBodyHeader)) {
      // Only to this node's own subjects' kind: a reply names where the input goes.
      const std::string input = std::move(call.body);
      for (std::size_t at = 0; at < input.size(); at += kChunkBytes)
        publish(connection, *sendTo, std::string_view(input).substr(at, kChunkBytes), {});
      return;
    }
    if (call.received == 0) {
      const auto status = number(list, kStatusHeader, kLastStatus + 1);
      CallResult result;
      if (status > kLastStatus) {
        result = unavailable("a node answered the forwarded call with no valid status");
        call.result = std::move(result);
        call.done.set();
        return;
      }
      result.status = static_cast<CallStatus>(status);
      result.code = static_cast<unsigned>(number(list, kCodeHeader, 0));
      result.retryable = header(list, kRetryableHeader).value_or("0") == "1";
      for (auto& [name, value] : list) {
        if (name.size() > kFunctionHeaderPrefix.size() && name.starts_with(kFunctionHeaderPrefix))
          result.headers.emplace_back(name.substr(kFunctionHeaderPrefix.size()), std::move(value));
      }
      call.result = std::move(result);
      call.chunks = std::max<std::uint64_t>(1, number(list, kChunksHeader, 1));
    }
    call.result->body += body;
    ++call.received;
    if (call.result->body.size() > maxBodyBytes + kChunkBytes) {
      call.result = CallResult{CallStatus::payloadTooLarge, "the forwarded answer is too large"};
      call.done.set();
      return;
    }
    if (call.received >= call.chunks) call.done.set();
  }

  void onCall(std::string reply, Invocation invocation, bool chunked, std::uint64_t bytes) {
    if (!owner || incoming.cancelled()) return;
    if (!chunked) {
      incoming.spawn(owner->serve(std::move(reply), std::move(invocation)));
      return;
    }
    if (bytes > maxBodyBytes) {
      CallResult tooLarge{CallStatus::payloadTooLarge, "input larger than " + std::to_string(maxBodyBytes) + " bytes"};
      owner->answer(reply, tooLarge);
      return;
    }
    const std::uint64_t id = nextId++;
    incomingBodies.emplace(id, Incoming{reply, std::move(invocation), bytes});
    publish(connection, reply, {}, {{kSendBodyHeader, bodyPrefix + "." + std::to_string(id)}});
    incoming.spawn(expire(id));
  }

  void onBody(std::uint64_t id, std::string body) {
    auto it = incomingBodies.find(id);
    if (it == incomingBodies.end()) return;
    Incoming& in = it->second;
    in.invocation.payload += body;
    if (in.invocation.payload.size() < in.bytes) return;
    Incoming complete = std::move(in);
    incomingBodies.erase(it);
    if (owner && !incoming.cancelled())
      incoming.spawn(owner->serve(std::move(complete.reply), std::move(complete.invocation)));
  }

  // Drops an input whose chunks did not all come.
  asio::awaitable<void> expire(std::uint64_t id) {
    co_await incoming.sleep(kBodyWait);
    incomingBodies.erase(id);
  }
};

namespace {

using SharedPtr = std::shared_ptr<void>;

void releaseClosure(void* closure) { delete static_cast<SharedPtr*>(closure); }

std::shared_ptr<CallForwarder::Shared> sharedOf(void* closure);

}  // namespace

CallForwarder::CallForwarder(asio::any_io_executor dataPlane, CallRunner& local, natsConnection* connection,
                             ForwarderOptions options)
    : dataPlane_(dataPlane),
      local_(local),
      connection_(connection),
      options_(std::move(options)),
      shared_(std::make_shared<Shared>(dataPlane)) {
  shared_->owner = this;
  shared_->connection = connection;
  shared_->maxBodyBytes = options_.maxBodyBytes;
  std::random_device random;
  const std::string prefix =
      "_TINYFAAS." + options_.nodeName + "." + std::to_string(random()) + std::to_string(random());
  shared_->replyPrefix = prefix + ".reply";
  shared_->bodyPrefix = prefix + ".body";
  auto onReply = [](natsConnection*, natsSubscription*, natsMsg* msg, void* closure) {
    auto shared = sharedOf(closure);
    const std::uint64_t id = lastToken(natsMsg_GetSubject(msg));
    const bool noResponders = natsMsg_IsNoResponders(msg);
    HeaderList list = headers(msg);
    std::string body = data(msg);
    natsMsg_Destroy(msg);
    asio::post(shared->dataPlane, [shared, id, noResponders, list = std::move(list), body = std::move(body)]() mutable {
      shared->onReply(id, noResponders, std::move(list), std::move(body));
    });
  };
  auto onBody = [](natsConnection*, natsSubscription*, natsMsg* msg, void* closure) {
    auto shared = sharedOf(closure);
    const std::uint64_t id = lastToken(natsMsg_GetSubject(msg));
    std::string body = data(msg);
    natsMsg_Destroy(msg);
    asio::post(shared->dataPlane,
               [shared, id, body = std::move(body)]() mutable { shared->onBody(id, std::move(body)); });
  };
  for (auto [subscription, subject, callback] :
       {std::tuple{&shared_->replies, shared_->replyPrefix + ".*", static_cast<natsMsgHandler>(onReply)},
        std::tuple{&shared_->bodies, shared_->bodyPrefix + ".*", static_cast<natsMsgHandler>(onBody)}}) {
    auto* closure = new SharedPtr(shared_);
    if (natsConnection_Subscribe(subscription, connection_, subject.c_str(), callback, closure) != NATS_OK) {
      spdlog::error("cluster: cannot subscribe to {}: calls are not forwarded", subject);
      delete closure;
      *subscription = nullptr;
    } else {
      natsSubscription_SetOnCompleteCB(*subscription, releaseClosure, closure);
    }
  }
}

namespace {

std::shared_ptr<CallForwarder::Shared> sharedOf(void* closure) {
  return std::static_pointer_cast<CallForwarder::Shared>(*static_cast<SharedPtr*>(closure));
}

}  // namespace

CallForwarder::~CallForwarder() {
  stopServing();
  for (natsSubscription* subscription : {shared_->replies, shared_->bodies}) {
    if (!subscription) continue;
    natsSubscription_Unsubscribe(subscription);
    natsSubscription_Destroy(subscription);
  }
  shared_->owner = nullptr;
}

void CallForwarder::stopServing() {
  for (auto& [name, subscription] : shared_->served) {
    natsSubscription_Unsubscribe(subscription);
    natsSubscription_Destroy(subscription);
  }
  shared_->served.clear();
}

asio::awaitable<void> CallForwarder::join() {
  shared_->incoming.cancel();
  co_await shared_->incoming.join();
}

void CallForwarder::update(std::map<std::string, std::chrono::milliseconds> registry, std::set<std::string> running) {
  registry_ = {registry.begin(), registry.end()};
  for (auto it = shared_->served.begin(); it != shared_->served.end();) {
    if (running.contains(it->first)) {
      ++it;
      continue;
    }
    natsSubscription_Unsubscribe(it->second);
    natsSubscription_Destroy(it->second);
    it = shared_->served.erase(it);
  }
  auto onCall = [](natsConnection*, natsSubscription*, natsMsg* msg, void* closure) {
    auto shared = sharedOf(closure);
    const char* reply = natsMsg_GetReply(msg);
    std::string replyTo = reply ? reply : "";
    Invocation invocation;
    invocation.function = std::string(natsMsg_GetSubject(msg)).substr(kCallPrefix.size());
    invocation.payload = data(msg);
    HeaderList list = headers(msg);
    natsMsg_Destroy(msg);
    if (replyTo.empty()) return;
    const bool chunked = header(list, kBodyBytesHeader).has_value();
    const std::uint64_t bytes = number(list, kBodyBytesHeader, std::numeric_limits<std::uint64_t>::max());
    for (auto& entry : list) {
      if (!entry.first.starts_with(kControlPrefix)) invocation.headers.push_back(std::move(entry));
    }
    asio::post(shared->dataPlane,
               [shared, replyTo = std::move(replyTo), invocation = std::move(invocation), chunked, bytes]() mutable {
                 shared->onCall(std::move(replyTo), std::move(invocation), chunked, bytes);
               });
  };
  for (const auto& name : running) {
    if (shared_->served.contains(name) || !isValidFunctionName(name)) continue;
    const std::string subject = std::string(kCallPrefix) + name;
    natsSubscription* subscription = nullptr;
    auto* closure = new SharedPtr(shared_);
    if (natsConnection_QueueSubscribe(&subscription, connection_, subject.c_str(), subject.c_str(), onCall, closure) !=
        NATS_OK) {
      delete closure;
      continue;  // NATS is away: the next round subscribes
    }
    natsSubscription_SetOnCompleteCB(subscription, releaseClosure, closure);
    shared_->served.emplace(name, subscription);
  }
}

asio::awaitable<void> CallForwarder::serve(std::string reply, Invocation invocation) {
  CallResult result;
  if (incoming_ >= options_.maxIncoming) {
    result = CallResult{CallStatus::overloaded, "node " + options_.nodeName + " runs too many forwarded calls"};
  } else {
    ++incoming_;
    // Only here: a forwarded call is never forwarded again.
    result = co_await local_.invoke(std::move(invocation));
    --incoming_;
  }
  answer(reply, result);
}

void CallForwarder::answer(const std::string& reply, const CallResult& result) {
  const std::size_t chunks = std::max<std::size_t>(1, (result.body.size() + kChunkBytes - 1) / kChunkBytes);
  HeaderList list{{kStatusHeader, std::to_string(static_cast<int>(result.status))},
                  {kCodeHeader, std::to_string(result.code)},
                  {kRetryableHeader, result.retryable ? "1" : "0"},
                  {kChunksHeader, std::to_string(chunks)}};
  for (const auto& [name, value] : result.headers) list.emplace_back(std::string(kFunctionHeaderPrefix) + name, value);
  for (std::size_t i = 0; i < chunks; ++i) {
    const std::string_view part =
        std::string_view(result.body).substr(std::min(result.body.size(), i * kChunkBytes), kChunkBytes);
    publish(connection_, reply, part, i == 0 ? list : HeaderList{{kChunkHeader, std::to_string(i)}});
  }
}

asio::awaitable<CallResult> CallForwarder::invoke(Invocation invocation) {
  CallResult here = co_await local_.invoke(invocation);
  const bool elsewhere = here.status == CallStatus::notFound || here.status == CallStatus::unavailable ||
                         here.status == CallStatus::overloaded;
  // Only a function name can become a subject: "a.b", "*" or ">" would
  // reach other subjects or every function.
  if (!elsewhere || !shared_->replies || !isValidFunctionName(invocation.function)) co_return here;
  if (natsConnection_Status(connection_) != NATS_CONN_STATUS_CONNECTED) co_return here;
  if (outgoing_ >= options_.maxOutgoing) co_return here;
  const std::string function = invocation.function;
  ++outgoing_;
  CallResult there = co_await forward(std::move(invocation));
  --outgoing_;
  if (there.status != CallStatus::notFound) co_return there;
  // Nobody took it: 503 for a function the cluster has, else what we found here.
  if (here.status == CallStatus::notFound && registry_.contains(function))
    co_return unavailable("no node of the cluster runs " + function + " now");
  co_return here;
}

asio::awaitable<CallResult> CallForwarder::forward(Invocation invocation) {
  const std::uint64_t id = shared_->nextId++;
  const std::string subject = std::string(kCallPrefix) + invocation.function;
  const std::string reply = shared_->replyPrefix + "." + std::to_string(id);
  Pending pending(dataPlane_);
  const bool chunked = invocation.payload.size() > kChunkBytes;
  if (chunked) pending.body = std::move(invocation.payload);
  natsMsg* msg = nullptr;
  if (natsMsg_Create(&msg, subject.c_str(), reply.c_str(), invocation.payload.data(),
                     static_cast<int>(invocation.payload.size())) != NATS_OK)
    co_return unavailable("cannot forward the call");
  // No structured bindings in coroutines (GCC 12).
  for (const auto& entry : invocation.headers) natsMsgHeader_Add(msg, entry.first.c_str(), entry.second.c_str());
  // Set, not added: a client's header of that name cannot pose as ours.
  if (chunked) natsMsgHeader_Set(msg, kBodyBytesHeader, std::to_string(pending.body.size()).c_str());
  shared_->pending.emplace(id, &pending);
  const natsStatus sent = natsConnection_PublishMsg(connection_, msg);
  natsMsg_Destroy(msg);
  std::chrono::milliseconds timeout = options_.callTimeout;
  if (auto it = registry_.find(invocation.function); it != registry_.end() && it->second.count() > 0)
    timeout = it->second;
  if (sent == NATS_OK) {
    asio::steady_timer deadline(dataPlane_, timeout + options_.grace);
    co_await (pending.done.wait() || deadline.async_wait(useTuple));
  }
  shared_->pending.erase(id);
  if (sent != NATS_OK) co_return unavailable("cannot forward the call: NATS is unreachable");
  if (pending.noResponders)
    co_return CallResult{CallStatus::notFound, "function " + invocation.function + " not found"};
  if (!pending.result)
    co_return CallResult{CallStatus::timeout, "function " + invocation.function + " did not answer within " +
                                                  std::to_string(timeout.count()) + " ms (forwarded)"};
  co_return std::move(*pending.result);
}

}  // namespace tinyfaas::cluster
