#include "fake_backend.hpp"

#include <boost/asio/post.hpp>

namespace tinyfaas::test {

namespace {

class FakeInstance final : public Instance {
 public:
  FakeInstance(std::shared_ptr<FakeBackend::Record> record, pid_t pid) : record_(std::move(record)), pid_(pid) {}
  const std::string& id() const override { return record_->spec.instanceId; }
  std::filesystem::path socketPath() const override { return handlerSocketPath(record_->spec.socketDir); }
  pid_t hostPid() const override { return pid_; }
  FakeBackend::Record& record() { return *record_; }

 private:
  std::shared_ptr<FakeBackend::Record> record_;
  pid_t pid_;
};

}  // namespace

FakeBackend::~FakeBackend() {
  for (auto& record : instances) record->handler->stop();
}

boost::asio::awaitable<void> FakeBackend::prepare() {
  if (holdPrepare) co_await cancelled_.wait();
  prepareEnded = true;
}

void FakeBackend::cancel() {
  ++cancelCalls;
  cancelled_.set();
}

boost::asio::awaitable<boost::system::result<std::unique_ptr<Instance>, std::string>> FakeBackend::start(
    InstanceSpec spec, ExitCallback onExit) {
  if (failStarts > 0) {
    --failStarts;
    co_return std::string("injected start failure");
  }
  std::filesystem::create_directories(spec.socketDir);
  auto record = std::make_shared<Record>();
  record->handler = FakeHandler::start(executor_, handlerSocketPath(spec.socketDir), spec.instanceId);
  // Answers name the instance, so a test can tell which one served a call.
  record->handler->echo = false;
  record->handler->body = spec.instanceId;
  record->handler->healthy = !startUnhealthy;
  record->spec = std::move(spec);
  record->onExit = std::move(onExit);
  instances.push_back(record);
  if (exitOnStart > 0) {
    --exitOnStart;
    boost::asio::post(executor_, [record] { exitRecord(*record, "exited with status 1"); });
  }
  co_return std::unique_ptr<Instance>(std::make_unique<FakeInstance>(record, instancePid));
}

boost::asio::awaitable<void> FakeBackend::stop(Instance& instance) {
  auto& record = static_cast<FakeInstance&>(instance).record();
  record.stopped = true;
  record.inFlightAtStop = record.handler->inFlight();
  record.handler->stop();
  std::error_code ignored;
  std::filesystem::remove_all(record.spec.socketDir, ignored);
  co_return;
}

void FakeBackend::exitRecord(Record& record, std::string how) {
  if (record.stopped || record.exited) return;
  record.exited = true;
  record.handler->stop();
  if (record.onExit) record.onExit(std::move(how));
}

void FakeBackend::exit(const std::string& instanceId, std::string how) {
  if (Record* record = find(instanceId)) exitRecord(*record, std::move(how));
}

FakeBackend::Record* FakeBackend::find(const std::string& instanceId) {
  for (auto& record : instances)
    if (record->spec.instanceId == instanceId) return record.get();
  return nullptr;
}

std::size_t FakeBackend::running() const {
  std::size_t count = 0;
  for (const auto& record : instances) count += (!record->stopped && !record->exited) ? 1 : 0;
  return count;
}

}  // namespace tinyfaas::test
