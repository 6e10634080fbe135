#include "mqtt_triggers/mqtt_triggers.hpp"

#include <algorithm>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/post.hpp>
#include <spdlog/spdlog.h>

#include "core/async.hpp"
#include "util/run_on.hpp"

namespace tinyfaas::mqtt_triggers {

namespace asio = boost::asio;
using namespace asio::experimental::awaitable_operators;

namespace {

// Long enough for a QoS 1 call at the default --call-timeout: Paho sends no
// PINGREQ while its receive thread waits for a call (README.md).
constexpr int kKeepAliveSeconds = 120;
constexpr std::chrono::seconds kMaxBackoff{30};
constexpr std::chrono::seconds kFollowEvery{1};
// A QoS 1 call that found no instance (the function is starting) is tried
// again this often, this many times, before the message is given up on.
constexpr std::chrono::milliseconds kUnavailableRetry{500};
constexpr int kUnavailableRetries = 20;
// How long stop() waits for the session to close; the calls ended by then.
constexpr std::chrono::seconds kDisconnectLimit{5};

std::string describe(const MQTTAsync_failureData5* data, const char* what) {
  std::string text = what;
  if (data == nullptr) return text;
  text += ": ";
  text += data->message != nullptr ? data->message : MQTTAsync_strerror(data->code);
  // A refused CONNECT has the broker's reason code in `code` (Paho 1.3).
  auto reason = data->reasonCode;
  if (reason == MQTTREASONCODE_SUCCESS && data->code > 0) reason = static_cast<MQTTReasonCodes>(data->code);
  if (reason != MQTTREASONCODE_SUCCESS) {
    const char* name = MQTTReasonCode_toString(reason);
    text += std::string(" (") + (name != nullptr ? name : std::to_string(reason).c_str()) + ")";
  }
  return text;
}

std::string oneLine(std::string text) {
  std::replace_if(
      text.begin(), text.end(), [](char c) { return c == '\n' || c == '\r'; }, ' ');
  if (text.size() > 200) text = text.substr(0, 200) + "...";
  return text;
}

}  // namespace

struct MqttTriggers::Message {
  std::string topic;
  std::string payload;
  int qos = 0;
  std::string responseTopic;               // MQTT 5 Response Topic; empty: none
  std::optional<std::string> correlation;  // MQTT 5 Correlation Data
  std::string refused;                     // why it is not run; empty when it is
};

// The context of one subscribe: which filter, in which connection.
struct MqttTriggers::Request {
  MqttTriggers* self;
  std::string filter;
  int qos;
  std::uint64_t connection;
};

boost::system::result<std::unique_ptr<MqttTriggers>, Failure> MqttTriggers::create(asio::any_io_executor management,
                                                                                   asio::any_io_executor dataPlane,
                                                                                   Invoker& invoker, LogSink& logs,
                                                                                   RouteSource routes,
                                                                                   MqttOptions options) {
  std::unique_ptr<MqttTriggers> self(
      new MqttTriggers(management, dataPlane, invoker, logs, std::move(routes), std::move(options)));
  MQTTAsync_createOptions create = MQTTAsync_createOptions_initializer5;
  int rc = MQTTAsync_createWithOptions(&self->client_, self->options_.broker.serverUri.c_str(),
                                       self->options_.clientId.c_str(), MQTTCLIENT_PERSISTENCE_NONE, nullptr, &create);
  if (rc != MQTTASYNC_SUCCESS) return Failure{std::string("MQTT client: ") + MQTTAsync_strerror(rc)};
  rc = MQTTAsync_setCallbacks(self->client_, self.get(), onConnectionLost, onMessage, nullptr);
  if (rc != MQTTASYNC_SUCCESS) return Failure{std::string("MQTT client: ") + MQTTAsync_strerror(rc)};
  return self;
}

MqttTriggers::MqttTriggers(asio::any_io_executor management, asio::any_io_executor dataPlane, Invoker& invoker,
                           LogSink& logs, RouteSource routes, MqttOptions options)
    : management_(std::move(management)),
      dataPlane_(std::move(dataPlane)),
      invoker_(invoker),
      logs_(logs),
      routes_(std::move(routes)),
      options_(std::move(options)),
      retry_(management_),
      followers_(management_),
      closer_(management_),
      disconnected_(management_),
      calls_(dataPlane_),
      clientWork_(clientLoop_.get_executor()),
      clientThread_([this] { clientLoop_.run(); }) {}

MqttTriggers::~MqttTriggers() {
  clientWork_.reset();
  clientThread_.join();
  if (client_ != nullptr) MQTTAsync_destroy(&client_);
}

void MqttTriggers::start() {
  // The table reaches the data plane before the first message can: a
  // message the broker kept for this session finds its function.
  follow();
  connect();
  followers_.spawn(followLoop());
}

asio::awaitable<void> MqttTriggers::followLoop() {
  while (true) {
    // (Not in the loop's condition: GCC 12 miscompiled that here.)
    const bool awake = co_await followers_.sleep(kFollowEvery);
    if (!awake) co_return;
    follow();
  }
}

void MqttTriggers::follow() {
  auto table = std::make_shared<const TriggerTable>(routes_());
  if (*table == *followed_) return;
  followed_ = table;
  auto install = [this, table] {
    table_ = table;
    // Counters live as long as the function has triggers.
    std::erase_if(counters_, [&table](const auto& entry) {
      return std::none_of(table->routes().begin(), table->routes().end(),
                          [&entry](const Route& route) { return route.function == entry.first; });
    });
    for (const Route& route : table->routes()) counters_.try_emplace(route.function);
  };
  asio::post(dataPlane_, install);
  const auto filters = table->filters();
  for (const auto& entry : wanted_) {
    if (filters.contains(entry.first)) continue;
    // The broker's session keeps it while the node is away: dropped on the
    // next connect.
    if (connected_) {
      unsubscribe(entry.first);
    } else {
      gone_.insert(entry.first);
    }
  }
  for (const auto& entry : filters) {
    gone_.erase(entry.first);
    auto it = wanted_.find(entry.first);
    if (connected_ && (it == wanted_.end() || it->second != entry.second)) subscribe(entry.first, entry.second);
  }
  wanted_ = filters;
}

void MqttTriggers::connect() {
  if (stopping_ || connected_ || connecting_) return;
  connecting_ = true;
  auto call = [this] {
    MQTTAsync_connectOptions options = MQTTAsync_connectOptions_initializer5;
    options.keepAliveInterval = kKeepAliveSeconds;
    // A persistent session: the broker keeps the subscriptions and the QoS 1
    // messages not acknowledged while the node is away, and redelivers them.
    options.cleanstart = 0;
    options.automaticReconnect = 0;  // ours, with the state above
    options.connectTimeout = 10;
    options.onSuccess5 = onConnected;
    options.onFailure5 = onConnectFailed;
    options.context = this;
    MQTTProperties properties = MQTTProperties_initializer;
    MQTTProperty expiry{};
    expiry.identifier = MQTTPROPERTY_CODE_SESSION_EXPIRY_INTERVAL;
    expiry.value.integer4 = static_cast<unsigned int>(options_.sessionExpiry.count());
    MQTTProperties_add(&properties, &expiry);
    options.connectProperties = &properties;
    MQTTAsync_SSLOptions tls = MQTTAsync_SSLOptions_initializer;
    tls.verify = 1;  // the host name too, not only the chain
    // Paho then loads only this file, not the system's store too.
    if (!options_.caFile.empty()) tls.trustStore = options_.caFile.c_str();
    if (options_.broker.tls) options.ssl = &tls;
    if (options_.credentials) {
      options.username = options_.credentials->username.c_str();
      options.password = options_.credentials->password.c_str();
    }
    const int rc = MQTTAsync_connect(client_, &options);
    MQTTProperties_free(&properties);
    if (rc != MQTTASYNC_SUCCESS) {
      asio::post(management_, [this, rc] {
        connecting_ = false;
        reconnectLater(std::string("connect: ") + MQTTAsync_strerror(rc));
      });
    }
  };
  asio::post(clientExecutor(), call);
}

void MqttTriggers::reconnectLater(std::string error) {
  if (stopping_) return;
  spdlog::warn("MQTT broker {}: {}; connecting again in {} s", options_.broker.serverUri, error, backoff_.count());
  lastError_ = std::move(error);
  retry_.expires_after(backoff_);
  backoff_ = std::min(backoff_ * 2, kMaxBackoff);
  retry_.async_wait([this](boost::system::error_code ec) {
    if (!ec) connect();
  });
}

void MqttTriggers::onConnected(void* context, MQTTAsync_successData5*) {
  auto* self = static_cast<MqttTriggers*>(context);
  asio::post(self->management_, [self] {
    self->connecting_ = false;
    if (self->stopping_) return;
    self->connected_ = true;
    ++self->connection_;
    self->backoff_ = std::chrono::seconds(1);
    self->lastError_.clear();
    self->subscribed_.clear();
    spdlog::info("MQTT broker {}: connected as {}", self->options_.broker.serverUri, self->options_.clientId);
    // Again even when the broker kept the session: it may have lost it.
    for (const auto& entry : self->wanted_) self->subscribe(entry.first, entry.second);
    for (const std::string& filter : self->gone_) self->unsubscribe(filter);
    self->gone_.clear();
  });
}

void MqttTriggers::onConnectFailed(void* context, MQTTAsync_failureData5* data) {
  auto* self = static_cast<MqttTriggers*>(context);
  asio::post(self->management_, [self, error = describe(data, "cannot connect")] {
    self->connecting_ = false;
    self->reconnectLater(error);
  });
}

void MqttTriggers::onConnectionLost(void* context, char* cause) {
  auto* self = static_cast<MqttTriggers*>(context);
  std::string error = cause != nullptr && *cause != '\0' ? std::string("connection lost: ") + cause : "connection lost";
  MQTTAsync_free(cause);
  asio::post(self->management_, [self, error = std::move(error)] {
    self->connected_ = false;
    self->subscribed_.clear();
    self->reconnectLater(error);
  });
}

void MqttTriggers::subscribe(const std::string& filter, int qos) {
  auto call = [this, request = Request{this, filter, qos, connection_}] {
    auto* context = new Request(request);
    MQTTAsync_responseOptions options = MQTTAsync_responseOptions_initializer;
    options.onSuccess5 = onSubscribed;
    options.onFailure5 = onSubscribeFailed;
    options.context = context;
    // The node's own replies never trigger it again (a reply_topic its
    // filter matches would loop).
    options.subscribeOptions.noLocal = 1;
    const int rc = MQTTAsync_subscribe(client_, context->filter.c_str(), context->qos, &options);
    if (rc != MQTTASYNC_SUCCESS) {
      delete context;
      asio::post(management_, [this, filter = request.filter, rc] {
        lastError_ = "subscribe to " + filter + ": " + MQTTAsync_strerror(rc);
      });
    }
  };
  asio::post(clientExecutor(), call);
}

void MqttTriggers::unsubscribe(const std::string& filter) {
  subscribed_.erase(filter);
  auto call = [this, filter] {
    MQTTAsync_responseOptions options = MQTTAsync_responseOptions_initializer;
    MQTTAsync_unsubscribe(client_, filter.c_str(), &options);
  };
  asio::post(clientExecutor(), call);
}

void MqttTriggers::onSubscribed(void* context, MQTTAsync_successData5*) {
  std::unique_ptr<Request> request(static_cast<Request*>(context));
  MqttTriggers* self = request->self;
  asio::post(self->management_, [self, request = std::move(request)] {
    auto wanted = self->wanted_.find(request->filter);
    if (request->connection == self->connection_ && self->connected_ && wanted != self->wanted_.end() &&
        wanted->second == request->qos)
      self->subscribed_[request->filter] = request->qos;
  });
}

void MqttTriggers::onSubscribeFailed(void* context, MQTTAsync_failureData5* data) {
  std::unique_ptr<Request> request(static_cast<Request*>(context));
  MqttTriggers* self = request->self;
  std::string error = describe(data, ("subscribe to " + request->filter + " refused").c_str());
  asio::post(self->management_, [self, error = std::move(error)] {
    spdlog::warn("MQTT broker {}: {}", self->options_.broker.serverUri, error);
    self->lastError_ = error;
  });
}

int MqttTriggers::onMessage(void* context, char* topicName, int topicLength, MQTTAsync_message* received) {
  auto* self = static_cast<MqttTriggers*>(context);
  auto message = std::make_shared<Message>();
  message->topic = topicLength > 0 ? std::string(topicName, static_cast<std::size_t>(topicLength)) : topicName;
  message->qos = received->qos;
  if (received->payloadlen < 0 || static_cast<std::size_t>(received->payloadlen) > self->options_.maxPayloadBytes) {
    message->refused = "payload of " + std::to_string(received->payloadlen) + " bytes is above the limit of " +
                       std::to_string(self->options_.maxPayloadBytes);
  } else {
    message->payload.assign(static_cast<const char*>(received->payload),
                            static_cast<std::size_t>(received->payloadlen));
  }
  if (MQTTProperty* p = MQTTProperties_getProperty(&received->properties, MQTTPROPERTY_CODE_RESPONSE_TOPIC))
    message->responseTopic.assign(p->value.data.data, static_cast<std::size_t>(p->value.data.len));
  if (MQTTProperty* p = MQTTProperties_getProperty(&received->properties, MQTTPROPERTY_CODE_CORRELATION_DATA))
    message->correlation.emplace(p->value.data.data, static_cast<std::size_t>(p->value.data.len));
  MQTTAsync_freeMessage(&received);
  MQTTAsync_free(topicName);
  if (!isHeaderSafe(message->topic)) message->refused = "its topic has control characters";

  if (message->qos == 0) {
    if (self->qos0InFlight_.fetch_add(1) >= self->options_.maxQos0InFlight && message->refused.empty())
      message->refused = "more than " + std::to_string(self->options_.maxQos0InFlight) + " QoS 0 messages in flight";
    auto spawn = [self, message] { self->calls_.spawn(self->handle(message, nullptr)); };
    asio::post(self->dataPlane_, spawn);
    return 1;
  }
  // QoS 1: Paho sends the PUBACK once this returns, so it returns once the
  // calls ended and their replies were handed to Paho (from this thread:
  // Paho's lock is ours here). Were the post dropped unrun (the node is
  // gone), the promise goes with it and the wait ends.
  self->inCallback_ = true;
  struct Leave {
    std::atomic<bool>& flag;
    ~Leave() { flag = false; }
  } leave{self->inCallback_};
  auto acknowledge = std::make_shared<std::promise<Replies>>();
  std::future<Replies> acknowledged = acknowledge->get_future();
  auto spawn = [self, message, acknowledge]() mutable {
    self->calls_.spawn(self->handle(std::move(message), std::move(acknowledge)));
  };
  asio::post(self->dataPlane_, std::move(spawn));
  acknowledge.reset();
  acknowledged.wait();
  Replies replies;
  try {
    replies = acknowledged.get();
  } catch (const std::future_error&) {
    return 1;
  }
  for (const Reply& reply : replies) {
    const int rc = self->send(reply);
    asio::post(self->dataPlane_, [self, reply, rc] { self->count(reply, rc); });
  }
  return 1;
}

asio::awaitable<void> MqttTriggers::handle(std::shared_ptr<const Message> message,
                                           std::shared_ptr<std::promise<Replies>> acknowledge) {
  // Told however run() ends.
  struct Done {
    MqttTriggers* self;
    std::shared_ptr<std::promise<Replies>> acknowledge;
    Replies replies;
    ~Done() {
      if (acknowledge) {
        acknowledge->set_value(std::move(replies));
        return;
      }
      --self->qos0InFlight_;
    }
  } done{this, std::move(acknowledge), {}};
  co_await run(*message, done.replies);
  if (done.acknowledge) co_return;
  for (Reply& reply : done.replies) {
    auto sendAndCount = [this, reply = std::move(reply)] {
      const int rc = send(reply);
      asio::post(dataPlane_, [this, reply, rc] { count(reply, rc); });
    };
    asio::post(clientExecutor(), std::move(sendAndCount));
  }
}

asio::awaitable<void> MqttTriggers::run(const Message& message, Replies& replies) {
  // Kept: a deploy may install another table while the calls run.
  const std::shared_ptr<const TriggerTable> table = table_;
  const std::vector<const Route*> routes = table->match(message.topic);
  if (routes.empty()) co_return;  // a subscription that outlived its trigger
  if (!message.refused.empty()) {
    for (const Route* route : routes) {
      if (auto it = counters_.find(route->function); it != counters_.end()) ++it->second.dropped;
    }
    spdlog::debug("MQTT message on {} dropped: {}", message.topic, message.refused);
    co_return;
  }
  for (const Route* route : routes) {
    if (auto it = counters_.find(route->function); it != counters_.end()) ++it->second.messages;
    const CallResult result = co_await call(*route, message);
    const bool failed = result.status != CallStatus::ok || result.code >= 400;
    if (failed) {
      if (auto it = counters_.find(route->function); it != counters_.end()) ++it->second.failed;
      fail(route->function, "MQTT message on " + message.topic + ": call failed (" +
                                std::string(toString(result.status)) +
                                (result.code != 0 ? " " + std::to_string(result.code) : std::string()) +
                                "): " + oneLine(result.body) + "; nothing published");
      continue;
    }
    if (!route->trigger.replyTopic.empty())
      replies.push_back({route->function, route->trigger.replyTopic, result.body, route->trigger.qos, std::nullopt});
    if (message.responseTopic.empty()) continue;
    if (auto problem = topicNameProblem(message.responseTopic)) {
      fail(route->function, "MQTT message on " + message.topic + ": response topic " + *problem + "; not published");
      continue;
    }
    replies.push_back({route->function, message.responseTopic, result.body, message.qos, message.correlation});
  }
}

asio::awaitable<CallResult> MqttTriggers::call(const Route& route, const Message& message) {
  for (int attempt = 0;; ++attempt) {
    Invocation invocation{route.function, message.payload, {{"X-Mqtt-Topic", message.topic}}};
    CallResult result = co_await invoker_.invoke(std::move(invocation));
    // A QoS 1 message is worth a wait: the broker holds the rest meanwhile.
    if (message.qos == 0 || result.status != CallStatus::unavailable || attempt >= kUnavailableRetries || stopping_)
      co_return result;
    asio::steady_timer pause(dataPlane_, kUnavailableRetry);
    co_await pause.async_wait(useTuple);
  }
}

int MqttTriggers::send(const Reply& reply) {
  MQTTAsync_message out = MQTTAsync_message_initializer;
  out.payload = const_cast<char*>(reply.payload.data());
  out.payloadlen = static_cast<int>(reply.payload.size());
  out.qos = reply.qos;
  MQTTProperties properties = MQTTProperties_initializer;
  if (reply.correlation) {
    MQTTProperty data{};
    data.identifier = MQTTPROPERTY_CODE_CORRELATION_DATA;
    data.value.data.data = const_cast<char*>(reply.correlation->data());
    data.value.data.len = static_cast<int>(reply.correlation->size());
    MQTTProperties_add(&properties, &data);
  }
  out.properties = properties;
  MQTTAsync_responseOptions options = MQTTAsync_responseOptions_initializer;
  const int rc = MQTTAsync_sendMessage(client_, reply.topic.c_str(), &out, &options);
  MQTTProperties_free(&properties);
  return rc;
}

void MqttTriggers::count(const Reply& reply, int rc) {
  auto it = counters_.find(reply.function);
  if (rc == MQTTASYNC_SUCCESS) {
    if (it != counters_.end()) ++it->second.published;
    return;
  }
  if (it != counters_.end()) ++it->second.failed;
  fail(reply.function, "MQTT reply to " + reply.topic + " not published: " + MQTTAsync_strerror(rc));
}

void MqttTriggers::fail(const std::string& function, std::string line) {
  asio::post(management_, [&logs = logs_, function, line = std::move(line)] { logs.append(function, "mqtt", line); });
}

void MqttTriggers::onDisconnected(void* context, MQTTAsync_successData5*) {
  auto* self = static_cast<MqttTriggers*>(context);
  asio::post(self->management_, [self] { self->disconnected_.set(); });
}

void MqttTriggers::onDisconnectFailed(void* context, MQTTAsync_failureData5*) { onDisconnected(context, nullptr); }

void MqttTriggers::stopAccepting() {
  stopping_ = true;
  asio::post(management_, [this] { closeSession(); });
}

void MqttTriggers::closeSession() {
  if (closing_) return;
  closing_ = true;
  stopping_ = true;
  followers_.cancel();
  retry_.cancel();
  closer_.spawn(close());
}

asio::awaitable<void> MqttTriggers::close() {
  // Paho drops what is published after the disconnect was asked for, so the
  // calls running end first, and a QoS 1 callback hands its replies over.
  co_await endOfCalls();
  while (inCallback_) {
    asio::steady_timer pause(management_, std::chrono::milliseconds(10));
    co_await pause.async_wait(useTuple);
  }
  if (!connected_ && !connecting_) {
    disconnected_.set();
    co_return;
  }
  auto call = [this] {
    MQTTAsync_disconnectOptions options = MQTTAsync_disconnectOptions_initializer5;
    options.timeout = 1000;  // for replies on their way
    options.onSuccess5 = onDisconnected;
    options.onFailure5 = onDisconnectFailed;
    options.context = this;
    if (MQTTAsync_disconnect(client_, &options) != MQTTASYNC_SUCCESS)
      asio::post(management_, [this] { disconnected_.set(); });
  };
  asio::post(clientExecutor(), call);
}

asio::awaitable<void> MqttTriggers::endOfCalls() {
  const auto home = co_await asio::this_coro::executor;
  AsyncEvent joined(home);
  asio::co_spawn(dataPlane_, calls_.join(),
                 [home, &joined](std::exception_ptr) { asio::post(home, [&joined] { joined.set(); }); });
  co_await joined.wait();
}

asio::awaitable<void> MqttTriggers::stop() {
  closeSession();
  co_await followers_.join();
  asio::steady_timer limit(management_, kDisconnectLimit);
  co_await (disconnected_.wait() || limit.async_wait(useTuple));
  if (!disconnected_.isSet()) spdlog::warn("MQTT: the session did not close within {} s", kDisconnectLimit.count());
  closer_.cancel();
  co_await closer_.join();
  co_await endOfCalls();
}

asio::awaitable<MqttState> MqttTriggers::state() {
  MqttState state;
  state.enabled = true;
  state.connected = connected_;
  state.lastError = lastError_;
  for (const auto& entry : subscribed_) state.subscribed.insert(entry.first);
  auto copy = [this] { return counters_; };
  state.functions = co_await runOn(dataPlane_, copy);
  co_return state;
}

}  // namespace tinyfaas::mqtt_triggers
