#include "cluster/cluster_options.hpp"

#include <unistd.h>

#include <algorithm>

namespace tinyfaas::cluster {

Result<std::vector<std::string>> parseServerList(std::string_view list) {
  std::vector<std::string> out;
  std::size_t at = 0;
  while (at <= list.size()) {
    const std::size_t comma = std::min(list.find(',', at), list.size());
    std::string url(list.substr(at, comma - at));
    url.erase(0, url.find_first_not_of(' '));
    url.erase(url.find_last_not_of(' ') + 1);
    if (!url.starts_with("nats://") && !url.starts_with("tls://"))
      return "'" + url + "' is not a NATS server URL (nats://HOST:PORT or tls://HOST:PORT)";
    if (url.find_first_of(" \t\r\n") != std::string::npos) return "'" + url + "' contains white space";
    out.push_back(std::move(url));
    at = comma + 1;
  }
  return out;
}

bool isValidNodeName(std::string_view name) {
  return !name.empty() && name.size() <= 64 && std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
  });
}

std::string defaultNodeName() {
  char host[256] = {};
  if (gethostname(host, sizeof host - 1) != 0) return "node";
  std::string name(host);
  name = name.substr(0, name.find('.'));
  for (char& c : name)
    if (!isValidNodeName(std::string_view(&c, 1))) c = '-';
  if (name.size() > 64) name.resize(64);
  return name.empty() ? "node" : name;
}

}  // namespace tinyfaas::cluster
