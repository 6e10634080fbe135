#include "cluster/cluster_agent.hpp"

#include <fstream>
#include <random>
#include <sstream>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "api/status_views.hpp"
#include "cluster/code_store.hpp"
#include "core/async.hpp"
#include "util/durable_file.hpp"
#include "util/run_on.hpp"

namespace tinyfaas::cluster {

namespace asio = boost::asio;
using nlohmann::json;
using DeployResult = boost::system::result<std::vector<std::string>, DeployError>;

namespace {

std::string randomHex() {
  std::random_device device;
  std::ostringstream out;
  out << std::hex << device() << device();
  return out.str();
}

std::int64_t wallMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// The scope a node deploys a registry record in: the record's owner.
Scope ownerScope(const std::string& owner) {
  if (owner.empty()) return Scope{};
  return Scope{owner, false};
}

}  // namespace

ClusterAgent::ClusterAgent(asio::any_io_executor management, asio::any_io_executor io, KvTransport& kv,
                           FunctionManager& manager, AgentOptions options)
    : management_(management),
      io_(std::move(io)),
      kv_(kv),
      manager_(manager),
      options_(std::move(options)),
      instance_(randomHex()),
      tasks_(management),
      wake_(management) {}

void ClusterAgent::start() {
  loadApplied();
  tasks_.spawn(loop());
}

asio::awaitable<void> ClusterAgent::stop() {
  tasks_.cancel();
  wake_.cancel();
  co_await tasks_.join();
}

void ClusterAgent::loadApplied() {
  std::ifstream in(options_.stateDir / "cluster.json");
  if (!in) return;
  const json document = json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (!document.is_object()) {
    spdlog::warn("cluster: {} is unreadable; functions deployed from the registry before are kept until it is read",
                 (options_.stateDir / "cluster.json").string());
    return;
  }
  for (const auto& [name, version] : document.items())
    if (version.is_string()) applied_[name] = version.get<std::string>();
}

void ClusterAgent::saveApplied() const {
  if (auto saved = writeFileDurably(options_.stateDir / "cluster.json", json(applied_).dump()); !saved)
    spdlog::warn("cluster: cannot save {}: {}", (options_.stateDir / "cluster.json").string(), saved.error());
}

void ClusterAgent::kick() {
  kicked_ = true;
  wake_.cancel();
}

asio::awaitable<void> ClusterAgent::loop() {
  while (!tasks_.cancelled()) {
    kicked_ = false;
    const bool reached = co_await refresh();
    if (reached != online_) {
      if (reached) {
        onlineSince_ = std::chrono::steady_clock::now();
        spdlog::info("cluster: connected to NATS; node {} converges to the registry", options_.nodeName);
      } else {
        spdlog::warn("cluster: NATS unreachable; node {} serves its own functions until it is back", options_.nodeName);
      }
      online_ = reached;
    }
    if (reached) reconcile();
    if (kicked_) continue;
    wake_.expires_after(options_.heartbeat);
    co_await wake_.async_wait(useTuple);
  }
}

asio::awaitable<bool> ClusterAgent::refresh() {
  NodeStatus own = ownStatus();
  const std::int64_t at = own.lastSeenMs;
  own.lastSeenMs = 0;
  // What others place by; a change is announced so that they act at once.
  const std::string changed = statusJson(own);
  const bool announce = changed != lastAnnounced_;
  own.lastSeenMs = at;
  const std::string heartbeat = statusJson(own);
  struct Read {
    Result<std::vector<KvEntry>> functions = std::vector<KvEntry>{};
    Result<std::vector<KvEntry>> nodes = std::vector<KvEntry>{};
    std::string error;
  };
  auto exchange = [this, &heartbeat, announce]() {
    Read read;
    if (auto put = kv_.put(Bucket::nodes, options_.nodeName, heartbeat); !put) {
      read.error = put.error();
      return read;
    }
    if (announce) kv_.announce();
    read.functions = kv_.list(Bucket::functions);
    read.nodes = kv_.list(Bucket::nodes);
    return read;
  };
  Read read = co_await runOn(io_, exchange);
  if (!read.error.empty() || !read.functions || !read.nodes) {
    spdlog::debug("cluster: {}", !read.error.empty() ? read.error
                                 : !read.functions   ? read.functions.error()
                                                     : read.nodes.error());
    co_return false;
  }
  lastAnnounced_ = changed;
  takeRecords(*read.functions);
  const auto now = std::chrono::steady_clock::now();
  std::map<std::string, NodeStatus> nodes;
  for (const auto& entry : *read.nodes) {
    auto status = parseStatus(entry.value);
    if (!status) continue;
    // No structured bindings in coroutines (GCC 12).
    const auto emplaced = seen_.try_emplace(entry.key, Seen{entry.revision, now});
    const auto seen = emplaced.first;
    if (emplaced.second) {
      // First sight: trust the writer's clock only to tell a long dead node.
      if (wallMs() - status->lastSeenMs > options_.downAfter.count()) seen->second.changed = now - options_.downAfter;
    } else if (seen->second.revision != entry.revision) {
      seen->second = Seen{entry.revision, now};
    }
    nodes.emplace(entry.key, std::move(*status));
  }
  nodes_ = std::move(nodes);
  if (roundListener_) {
    std::map<std::string, std::chrono::milliseconds> registry;
    for (const auto& entry : records_) registry.emplace(entry.first, entry.second.config.calls.timeout);
    std::set<std::string> running;
    for (const auto& function : manager_.status())
      if (function.healthy > 0) running.insert(function.name);
    roundListener_(std::move(registry), std::move(running));
  }
  co_return true;
}

void ClusterAgent::takeRecords(const std::vector<KvEntry>& entries) {
  std::map<std::string, FunctionRecord> records;
  for (const auto& entry : entries) {
    auto record = parseRecord(entry.value);
    if (!record || record->config.name != entry.key) {
      spdlog::warn("cluster: record of {} unusable: {}", entry.key, record ? "its name differs" : record.error());
      continue;
    }
    records.emplace(entry.key, std::move(*record));
  }
  records_ = std::move(records);
}

bool ClusterAgent::up(const std::string& node) const {
  if (node == options_.nodeName) return true;
  auto it = seen_.find(node);
  return it != seen_.end() && std::chrono::steady_clock::now() - it->second.changed < options_.downAfter;
}

std::vector<Candidate> ClusterAgent::candidates() const {
  std::vector<Candidate> out;
  bool self = false;
  for (const auto& [name, status] : nodes_) {
    self = self || name == options_.nodeName;
    out.push_back({name, up(name), status.memoryBudgetMb, status.reservedMb, status.functions});
  }
  if (!self) out.push_back({options_.nodeName, true, options_.memoryBudgetMb, 0});
  return out;
}

void ClusterAgent::reconcile() {
  std::map<std::string, std::string> failed;
  for (const auto& [name, failure] : failures_) failed[name] = failure.version;
  const bool settled = std::chrono::steady_clock::now() - onlineSince_ >= options_.downAfter;
  const Plan next = plan(records_, candidates(), options_.nodeName, applied_, failed, settled);
  for (const auto& record : next.deploy) {
    if (busy_.insert(record.config.name).second) tasks_.spawn(apply(record));
  }
  for (const auto& name : next.remove) {
    if (busy_.insert(name).second) tasks_.spawn(drop(name));
  }
}

asio::awaitable<void> ClusterAgent::apply(FunctionRecord record) {
  const std::string name = record.config.name;
  spdlog::info("cluster: deploying {} (version {}) from the registry", name, record.version);
  auto fetch = [this, &record] { return loadCode(kv_, record.code); };
  auto zip = co_await runOn(io_, fetch);
  if (!zip) {
    // NATS went away meanwhile, most likely: the next round tries again.
    spdlog::warn("cluster: code of {}: {}", name, zip.error());
    busy_.erase(name);
    co_return;
  }
  const Scope scope = ownerScope(record.config.owner);
  auto deployed = co_await manager_.deploy(record.config, *zip, record.subfolder, scope);
  if (!deployed && deployed.error().nameTaken) {
    // A local function of another tenant by that name: the registry decides.
    const Scope admin;  // named: GCC 12 destroys a temporary passed to a coroutine twice
    co_await manager_.remove(name, admin);
    deployed = co_await manager_.deploy(record.config, std::move(*zip), record.subfolder, scope);
  }
  if (deployed) {
    applied_[name] = record.version;
    failures_.erase(name);
    saveApplied();
  } else if (!deployed.error().shuttingDown) {
    spdlog::warn("cluster: {} (version {}) failed here: {}", name, record.version, deployed.error().message);
    failures_[name] = {record.version, deployed.error().message, deployed.error().userError};
  }
  busy_.erase(name);
  // Tell the others at once, and catch up with what changed meanwhile.
  kick();
}

asio::awaitable<void> ClusterAgent::drop(std::string name) {
  spdlog::info("cluster: removing {}: the registry no longer places it here", name);
  const Scope admin;  // named: GCC 12 destroys a temporary passed to a coroutine twice
  co_await manager_.remove(name, admin);
  applied_.erase(name);
  failures_.erase(name);
  saveApplied();
  busy_.erase(name);
  kick();
}

NodeStatus ClusterAgent::ownStatus() const {
  NodeStatus status;
  status.name = options_.nodeName;
  status.instance = instance_;
  status.lastSeenMs = wallMs();
  status.versions = applied_;
  status.failures = failures_;
  status.memoryBudgetMb = options_.memoryBudgetMb;
  for (const auto& function : manager_.status()) {
    if (function.healthy > 0) status.functions.push_back(function.name);
    status.reservedMb += static_cast<long long>(function.desired) * function.limits.memoryMb;
    if (function.memoryBytes) status.memoryBytes = status.memoryBytes.value_or(0) + *function.memoryBytes;
  }
  return status;
}

asio::awaitable<DeployResult> ClusterAgent::deploy(FunctionConfig config, std::string zip, std::string subfolder,
                                                   int nodes, Scope scope) {
  const std::string name = config.name;
  FunctionRecord record;
  record.config = std::move(config);
  record.subfolder = std::move(subfolder);
  record.nodes = nodes;
  record.version = options_.nodeName + "-" + std::to_string(wallMs()) + "-" + randomHex();
  struct Stored {
    std::optional<FunctionRecord> previous;
    std::string error;
    bool nameTaken = false;
  };
  auto store = [this, &record, &zip, &scope]() {
    Stored out;
    auto existing = kv_.get(Bucket::functions, record.config.name);
    if (!existing) {
      out.error = existing.error();
      return out;
    }
    if (*existing) {
      if (auto previous = parseRecord((*existing)->value)) out.previous = std::move(*previous);
    }
    // As on one node: a tenant's new function is its own, an admin's
    // redeploy keeps the owner, another tenant's name is taken.
    record.config.owner = scope.tenant;
    if (out.previous) {
      if (!scope.covers(out.previous->config.owner)) {
        out.nameTaken = true;
        return out;
      }
      record.config.owner = out.previous->config.owner;
    }
    auto hash = storeCode(kv_, zip);
    if (!hash) {
      out.error = hash.error();
      return out;
    }
    record.code = *hash;
    if (auto put = kv_.put(Bucket::functions, record.config.name, recordJson(record)); !put) {
      out.error = put.error();
    } else {
      kv_.announce();
    }
    return out;
  };
  Stored stored = co_await runOn(io_, store);
  if (stored.nameTaken)
    co_return DeployError{true, "function " + name + " belongs to another tenant", /*nameTaken=*/true};
  if (!stored.error.empty())
    co_return DeployError{false, "cannot store " + name + " in the cluster (NATS: " + stored.error + ")"};
  records_[name] = record;
  kick();  // a round at once: this node deploys it now if it is placed here
  auto ready = co_await awaitReady(name, record.version);
  if (!ready) {
    // Undo the upload unless another one replaced it meanwhile.
    auto undo = [this, &record, &stored]() {
      auto current = kv_.get(Bucket::functions, record.config.name);
      if (!current || !*current) return;
      auto parsed = parseRecord((*current)->value);
      if (!parsed || parsed->version != record.version) return;
      if (stored.previous) {
        (void)kv_.put(Bucket::functions, record.config.name, recordJson(*stored.previous));
      } else {
        (void)kv_.erase(Bucket::functions, record.config.name);
      }
    };
    co_await runOn(io_, undo);
    kick();
    auto current = records_.find(name);
    if (current != records_.end() && current->second.version == record.version) {
      if (stored.previous) {
        current->second = *stored.previous;
      } else {
        records_.erase(current);
      }
    }
    co_await dropUnusedCode(record.code);
  } else if (stored.previous) {
    co_await dropUnusedCode(stored.previous->code);
  }
  co_return ready;
}

asio::awaitable<void> ClusterAgent::dropUnusedCode(std::string hash) {
  for (const auto& entry : records_)
    if (entry.second.code == hash) co_return;
  auto dropping = [this, &hash] { return dropCode(kv_, hash); };
  if (auto dropped = co_await runOn(io_, dropping); !dropped)
    spdlog::warn("cluster: code {} left in the code bucket: {}", hash, dropped.error());
}

asio::awaitable<DeployResult> ClusterAgent::awaitReady(const std::string& name, const std::string& version) {
  const auto deadline = std::chrono::steady_clock::now() + options_.deployTimeout;
  asio::steady_timer pause(management_);
  for (;;) {
    std::vector<std::string> ready;
    const auto local = manager_.status();
    for (const auto& function : local) {
      auto applied = applied_.find(name);
      if (function.name == name && function.healthy > 0 && applied != applied_.end() && applied->second == version)
        ready.push_back(options_.nodeName);
    }
    std::vector<std::string> targets;
    std::optional<DeployFailure> failure;
    if (auto own = failures_.find(name); own != failures_.end() && own->second.version == version) {
      failure = own->second;
      // The upload's own fault shows on every node alike: no need to wait for them.
      if (failure->userError) co_return DeployError{true, failure->error};
    }
    const auto record = records_.find(name);
    if (record == records_.end() || record->second.version != version)
      co_return DeployError{true, "function " + name + " was deleted or replaced while it was deployed", true};
    const auto nodes = candidates();
    std::size_t failedTargets = 0;
    for (const auto& node : nodes) {
      if (!node.up || !placedOn(record->second, nodes, node.name)) continue;
      targets.push_back(node.name);
      if (node.name == options_.nodeName) {
        if (failure) ++failedTargets;
        continue;
      }
      const auto status = nodes_.find(node.name);
      if (status == nodes_.end()) continue;
      const auto& s = status->second;
      auto v = s.versions.find(name);
      if (v != s.versions.end() && v->second == version &&
          std::find(s.functions.begin(), s.functions.end(), name) != s.functions.end())
        ready.push_back(node.name);
      auto f = s.failures.find(name);
      if (f != s.failures.end() && f->second.version == version) {
        ++failedTargets;
        if (!failure) failure = f->second;
      }
    }
    if (!ready.empty()) co_return ready;
    if (tasks_.cancelled())
      co_return DeployError{false, "tinyFaaS is shutting down; upload again once it is back", false, true};
    if (failure && failedTargets >= targets.size()) co_return DeployError{failure->userError, failure->error};
    if (std::chrono::steady_clock::now() > deadline)
      co_return DeployError{false, "function " + name + " was not ready on any node within " +
                                       std::to_string(options_.deployTimeout.count()) + " s"};
    pause.expires_after(std::chrono::milliseconds(50));
    co_await pause.async_wait(useTuple);
  }
}

asio::awaitable<bool> ClusterAgent::remove(std::string name, Scope scope) {
  struct Removed {
    bool found = false;
    std::string code;
  };
  auto erase = [this, &name, &scope]() {
    Removed out;
    auto existing = kv_.get(Bucket::functions, name);
    if (!existing || !*existing) return out;
    auto record = parseRecord((*existing)->value);
    if (record && !scope.covers(record->config.owner)) return out;
    if (!kv_.erase(Bucket::functions, name)) return out;
    kv_.announce();
    out.found = true;
    if (record) out.code = record->code;
    return out;
  };
  Removed removed = co_await runOn(io_, erase);
  if (!removed.found) co_return false;
  records_.erase(name);
  if (!removed.code.empty()) co_await dropUnusedCode(removed.code);
  kick();
  co_return true;
}

asio::awaitable<std::vector<std::string>> ClusterAgent::removeAll(Scope scope) {
  std::vector<std::string> removed;
  const std::vector<std::string> listed = co_await names(scope);
  for (const std::string& name : listed) {
    const bool gone = co_await remove(name, scope);
    if (gone) removed.push_back(name);
  }
  co_return removed;
}

asio::awaitable<std::vector<std::string>> ClusterAgent::names(Scope scope) {
  // Fresh: a function just deleted or uploaded on another node is listed as it is now.
  auto read = [this] { return kv_.list(Bucket::functions); };
  auto entries = co_await runOn(io_, read);
  if (entries) takeRecords(*entries);
  std::vector<std::string> out;
  for (const auto& [name, record] : records_)
    if (scope.covers(record.config.owner)) out.push_back(name);
  co_return out;
}

json ClusterAgent::nodes(const Scope& scope) const {
  json out = json::array();
  std::map<std::string, NodeStatus> all = nodes_;
  all[options_.nodeName] = ownStatus();
  for (const auto& [name, status] : all) {
    // A tenant learns of its own functions only; an admin of every one.
    std::vector<std::string> functions;
    for (const auto& function : status.functions)
      if (scope.admin || has(function, scope)) functions.push_back(function);
    json memory{{"budget_mb", status.memoryBudgetMb}, {"reserved_mb", status.reservedMb}};
    if (status.memoryBytes) memory["used_bytes"] = *status.memoryBytes;
    out.push_back(
        {{"name", name},
         {"up", up(name)},
         {"self", name == options_.nodeName},
         {"functions", functions},
         {"last_seen", isoTime(std::chrono::system_clock::time_point(std::chrono::milliseconds(status.lastSeenMs)))},
         {"memory", memory}});
  }
  return out;
}

void ClusterAgent::annotate(json& functions, const Scope& scope) const {
  const auto placeOf = [this](const FunctionRecord& record) {
    std::vector<std::string> running = runningElsewhere(record.config.name);
    for (const auto& function : manager_.status())
      if (function.name == record.config.name && function.healthy > 0) running.push_back(options_.nodeName);
    std::sort(running.begin(), running.end());
    return json{{"nodes", record.nodes > 0 ? json(record.nodes) : json(nullptr)},
                {"running_on", running},
                {"version", record.version}};
  };
  std::set<std::string> listed;
  for (auto& function : functions) {
    const std::string name = function.value("name", "");
    listed.insert(name);
    if (auto it = records_.find(name); it != records_.end()) function["cluster"] = placeOf(it->second);
  }
  for (const auto& [name, record] : records_) {
    if (listed.contains(name) || !scope.covers(record.config.owner)) continue;
    functions.push_back({{"name", name},
                         {"runtime", toString(record.config.runtime)},
                         {"state", "elsewhere"},
                         {"cluster", placeOf(record)}});
  }
}

std::vector<std::string> ClusterAgent::runningElsewhere(const std::string& name) const {
  std::vector<std::string> running;
  for (const auto& [node, status] : nodes_) {
    if (node != options_.nodeName && up(node) &&
        std::find(status.functions.begin(), status.functions.end(), name) != status.functions.end())
      running.push_back(node);
  }
  return running;
}

bool ClusterAgent::has(const std::string& name, const Scope& scope) const {
  auto it = records_.find(name);
  return it != records_.end() && scope.covers(it->second.config.owner);
}

asio::awaitable<std::string> ClusterAgent::remoteLogs(std::string name, Scope scope, LogQuery query) {
  if (!logs_ || !has(name, scope)) co_return std::string();
  std::vector<std::string> running = runningElsewhere(name);
  if (running.empty()) co_return std::string();
  co_return co_await logs_->gather(std::move(name), std::move(scope), std::move(query), std::move(running));
}

}  // namespace tinyfaas::cluster
