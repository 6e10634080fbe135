#pragma once
// The cluster settings of `tinyfaas serve` (--cluster, --node-name), checked.

#include <string>
#include <string_view>
#include <vector>

#include "cluster/cluster_transport.hpp"

namespace tinyfaas::cluster {

// "nats://H:P,nats://H:P" (tls:// too) -> the URLs.
Result<std::vector<std::string>> parseServerList(std::string_view list);
// Letters, digits, '-' and '_', at most 64: a NATS key and a subject token.
bool isValidNodeName(std::string_view name);
// The host name, made a valid node name; "node" when it has none.
std::string defaultNodeName();

}  // namespace tinyfaas::cluster
