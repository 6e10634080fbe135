#include "backend/docker/egress_networks.hpp"

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

namespace tinyfaas::docker {

namespace http = boost::beast::http;
using json = nlohmann::json;

boost::asio::awaitable<boost::system::result<void, std::string>> EgressNetworks::acquire(const std::string& function) {
  auto guard = co_await mutex_.lock();
  Network& network = networks_[function];
  if (!network.exists) {
    json body = {{"Name", name(function)},
                 {"Driver", "bridge"},
                 {"CheckDuplicate", true},
                 {"Labels", {{"tinyfaas.node", nodeId_}, {"tinyfaas.function", function}}}};
    auto created = co_await client_.request(http::verb::post, "/networks/create", body.dump());
    if (!created || !created->is({201, 409})) {
      const std::string why = created ? created->message() : created.error();
      if (network.users == 0) networks_.erase(function);
      co_return "cannot create the network of " + function + ": " + why;
    }
    // 201 created; 409 a network of that name exists: this node's (the name
    // holds the node id), left by a stop that failed, so it is reused.
    network.exists = true;
  }
  ++network.users;
  co_return boost::system::result<void, std::string>{};
}

boost::asio::awaitable<void> EgressNetworks::release(const std::string& function) {
  auto guard = co_await mutex_.lock();
  auto it = networks_.find(function);
  if (it == networks_.end()) co_return;
  if (--it->second.users > 0) co_return;
  networks_.erase(it);
  auto removed = co_await client_.request(http::verb::delete_, "/networks/" + name(function));
  // 204 removed; 404 already gone. Otherwise the next start's leftover sweep removes it.
  if (!removed) {
    spdlog::warn("cannot remove the network of {}: {}", function, removed.error());
  } else if (!removed->is({204, 404})) {
    spdlog::warn("cannot remove the network of {}: {}", function, removed->message());
  }
}

}  // namespace tinyfaas::docker
