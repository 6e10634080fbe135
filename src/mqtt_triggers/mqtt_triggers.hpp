#pragma once
// The node's MQTT session: subscribes to its functions' trigger filters,
// calls a function for each message that matches, publishes the output to
// the trigger's reply_topic and the message's MQTT 5 Response Topic, and
// acknowledges QoS 1 messages only once their calls finished.
//
// Threads: Paho's threads only post, to the management executor (the
// session: connection state, subscriptions, reconnect timer) or to the data
// plane (the trigger table, counters, and the calls). The one exception is
// a QoS 1 message: Paho's receive thread waits for its calls, because Paho
// sends the PUBACK when the message callback returns (see README.md). It
// waits holding Paho's global lock, so nothing else calls into Paho but a
// thread of this module's own (the client thread): the management executor
// and the data plane post their connects, subscriptions and publishes to it
// and never block.

#include <atomic>
#include <chrono>
#include <cstddef>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <MQTTAsync.h>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/system/result.hpp>

#include "core/failure.hpp"
#include "core/invoker.hpp"
#include "core/log_sink.hpp"
#include "core/mqtt_trigger.hpp"
#include "mqtt_triggers/broker_address.hpp"
#include "mqtt_triggers/trigger_table.hpp"
#include "util/async_sync.hpp"

namespace tinyfaas::mqtt_triggers {

struct MqttOptions {
  BrokerAddress broker;
  std::optional<Credentials> credentials;
  std::string clientId;
  // Messages above it are not run (the node's --max-body-bytes).
  std::size_t maxPayloadBytes = std::size_t{16} << 20;
  // QoS 0 messages whose calls run at once; more are dropped and counted.
  // QoS 1 messages run one at a time, and the broker holds the rest.
  std::size_t maxQos0InFlight = 256;
  // How long the broker keeps the session (subscriptions, unacknowledged
  // QoS 1 messages) while the node is away.
  std::chrono::seconds sessionExpiry{7 * 86400};
};

class MqttTriggers {
 public:
  // The current triggers of every function; called on the management executor.
  using RouteSource = std::function<std::vector<Route>()>;

  // `invoker` runs calls on the data plane; `logs` is written on the management executor.
  static boost::system::result<std::unique_ptr<MqttTriggers>, Failure> create(boost::asio::any_io_executor management,
                                                                              boost::asio::any_io_executor dataPlane,
                                                                              Invoker& invoker, LogSink& logs,
                                                                              RouteSource routes, MqttOptions options);
  ~MqttTriggers();
  MqttTriggers(const MqttTriggers&) = delete;
  MqttTriggers& operator=(const MqttTriggers&) = delete;

  // Management executor: reads the triggers, connects, and from then on
  // follows deploys and deletes (checked every second) and reconnects with
  // backoff when the broker goes away.
  void start();
  // Management executor: disconnects; calls in flight finish (a QoS 1
  // message whose acknowledgement that misses is delivered again after the
  // restart). Nothing of it runs afterwards.
  boost::asio::awaitable<void> stop();
  // Management executor.
  boost::asio::awaitable<MqttState> state();

 private:
  struct Message;
  struct Request;
  MqttTriggers(boost::asio::any_io_executor management, boost::asio::any_io_executor dataPlane, Invoker& invoker,
               LogSink& logs, RouteSource routes, MqttOptions options);

  // Paho's threads.
  static void onConnectionLost(void* context, char* cause);
  static int onMessage(void* context, char* topicName, int topicLength, MQTTAsync_message* message);
  static void onConnected(void* context, MQTTAsync_successData5* data);
  static void onConnectFailed(void* context, MQTTAsync_failureData5* data);
  static void onSubscribed(void* context, MQTTAsync_successData5* data);
  static void onSubscribeFailed(void* context, MQTTAsync_failureData5* data);
  static void onDisconnected(void* context, MQTTAsync_successData5* data);
  static void onDisconnectFailed(void* context, MQTTAsync_failureData5* data);

  // Management executor.
  void connect();
  void reconnectLater(std::string error);
  void follow();
  void subscribe(const std::string& filter, int qos);
  void unsubscribe(const std::string& filter);
  boost::asio::awaitable<void> followLoop();
  boost::asio::any_io_executor clientExecutor() { return clientLoop_.get_executor(); }

  // Data plane.
  // Runs the message's calls; `acknowledge` (QoS 1) is told when they ended.
  boost::asio::awaitable<void> handle(std::shared_ptr<const Message> message,
                                      std::shared_ptr<std::promise<void>> acknowledge);
  boost::asio::awaitable<void> run(const Message& message);
  boost::asio::awaitable<CallResult> call(const Route& route, const Message& message);
  void publish(const std::string& topic, const std::string& payload, int qos, const std::string* correlation,
               const std::string& function);
  void fail(const std::string& function, std::string line);

  boost::asio::any_io_executor management_;
  boost::asio::any_io_executor dataPlane_;
  Invoker& invoker_;
  LogSink& logs_;
  RouteSource routes_;
  MqttOptions options_;
  MQTTAsync client_ = nullptr;
  std::atomic<bool> stopping_ = false;
  std::atomic<std::size_t> qos0InFlight_ = 0;

  // Management executor.
  bool connected_ = false;
  bool connecting_ = false;
  std::string lastError_;
  std::chrono::seconds backoff_{1};
  std::map<std::string, int> wanted_;      // filter -> QoS
  std::map<std::string, int> subscribed_;  // acknowledged by the broker in this connection
  std::uint64_t connection_ = 0;           // tells a late SUBACK of an earlier connection apart
  boost::asio::steady_timer retry_;
  TaskGroup followers_;
  std::shared_ptr<const TriggerTable> followed_ = std::make_shared<TriggerTable>();
  AsyncEvent disconnected_;

  // Data plane.
  std::shared_ptr<const TriggerTable> table_ = std::make_shared<TriggerTable>();
  std::map<std::string, MqttFunctionCounters, std::less<>> counters_;
  TaskGroup calls_;

  // Last: started once everything above exists, joined first. Every call
  // into Paho but create and destroy runs here.
  boost::asio::io_context clientLoop_{1};
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> clientWork_;
  std::thread clientThread_;
};

}  // namespace tinyfaas::mqtt_triggers
