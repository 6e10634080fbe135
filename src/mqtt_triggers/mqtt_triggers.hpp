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
// and never block. A QoS 1 message's replies are published by the receive
// thread itself before it returns (Paho allows calls inside its callbacks),
// so they are out before the PUBACK and before a disconnect.

#include <atomic>
#include <chrono>
#include <cstddef>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <optional>
#include <set>
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

#include "core/drainable.hpp"
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
  std::string caFile;  // the CAs to trust instead of the system's store; empty: the system's
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

class MqttTriggers final : public Drainable {
 public:
  // The current triggers of every function; called on the management executor.
  using RouteSource = std::function<std::vector<Route>()>;

  // `invoker` runs calls on the data plane; `logs` is written on the management executor.
  static boost::system::result<std::unique_ptr<MqttTriggers>, Failure> create(boost::asio::any_io_executor management,
                                                                              boost::asio::any_io_executor dataPlane,
                                                                              Invoker& invoker, LogSink& logs,
                                                                              RouteSource routes, MqttOptions options);
  ~MqttTriggers() override;
  MqttTriggers(const MqttTriggers&) = delete;
  MqttTriggers& operator=(const MqttTriggers&) = delete;

  // Management executor: reads the triggers, connects, and from then on
  // follows deploys and deletes (checked every second) and reconnects with
  // backoff when the broker goes away.
  void start();
  // Drainable, on the data plane: closes the session (once the QoS 1 call
  // in progress, if any, ended and was acknowledged), so no new message
  // comes; calls running go on.
  void stopAccepting() override;
  std::size_t callsInFlight() const override { return calls_.size(); }
  // The calls end with the instances; a QoS 1 message cut short this way is
  // acknowledged (Paho cannot hold its PUBACK back), see README.md.
  void cutShort(std::string_view) override {}
  // Management executor, once drained and the instances stopped: waits for
  // the session to close and the calls to end. Nothing of it runs afterwards.
  boost::asio::awaitable<void> stop();
  // Management executor.
  boost::asio::awaitable<MqttState> state();

 private:
  struct Message;
  // A function's output, to publish.
  struct Reply {
    std::string function;
    std::string topic;
    std::string payload;
    int qos = 0;
    std::optional<std::string> correlation;
  };
  using Replies = std::vector<Reply>;
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
  void closeSession();
  boost::asio::awaitable<void> close();
  boost::asio::awaitable<void> endOfCalls();
  void reconnectLater(std::string error);
  void follow();
  void subscribe(const std::string& filter, int qos);
  void unsubscribe(const std::string& filter);
  boost::asio::awaitable<void> followLoop();
  boost::asio::any_io_executor clientExecutor() { return clientLoop_.get_executor(); }

  // Data plane.
  // Runs the message's calls. QoS 0: publishes their replies (through the
  // client thread). QoS 1: hands them to `acknowledge`, whose Paho thread
  // publishes them before it returns and Paho acknowledges the message.
  boost::asio::awaitable<void> handle(std::shared_ptr<const Message> message,
                                      std::shared_ptr<std::promise<Replies>> acknowledge);
  boost::asio::awaitable<void> run(const Message& message, Replies& replies);
  boost::asio::awaitable<CallResult> call(const Route& route, const Message& message);
  void count(const Reply& reply, int rc);
  // Client thread, or Paho's receive thread inside the message callback.
  int send(const Reply& reply);
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
  std::atomic<bool> inCallback_ = false;  // a QoS 1 callback runs (Paho's receive thread)

  // Management executor.
  bool connected_ = false;
  bool connecting_ = false;
  bool closing_ = false;
  std::string lastError_;
  std::chrono::seconds backoff_{1};
  std::map<std::string, int> wanted_;      // filter -> QoS
  std::map<std::string, int> subscribed_;  // acknowledged by the broker in this connection
  std::set<std::string> gone_;             // filters whose triggers went while disconnected
  std::uint64_t connection_ = 0;           // tells a late SUBACK of an earlier connection apart
  boost::asio::steady_timer retry_;
  TaskGroup followers_;
  TaskGroup closer_;
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
