#include "mqtt_triggers/broker_address.hpp"

#include <cstdint>
#include <cstdio>
#include <fstream>
#include <iterator>

#include <boost/url/parse.hpp>

namespace tinyfaas::mqtt_triggers {

boost::system::result<BrokerAddress, Failure> parseBrokerUrl(std::string_view url) {
  const Failure bad{"--mqtt must be mqtt://HOST[:PORT] or mqtts://HOST[:PORT], got \"" + std::string(url) + "\""};
  auto parsed = boost::urls::parse_absolute_uri(url);
  if (!parsed || parsed->host().empty() || parsed->has_userinfo() || parsed->has_query() || parsed->has_fragment() ||
      (!parsed->path().empty() && parsed->path() != "/"))
    return bad;
  BrokerAddress address;
  if (parsed->scheme() == "mqtts") {
    address.tls = true;
  } else if (parsed->scheme() != "mqtt") {
    return bad;
  }
  if (parsed->has_port() && parsed->port_number() == 0) return bad;
  const std::string port = parsed->has_port() ? std::string(parsed->port()) : address.tls ? "8883" : "1883";
  address.serverUri = (address.tls ? "ssl://" : "tcp://") + std::string(parsed->encoded_host()) + ":" + port;
  return address;
}

boost::system::result<std::string, Failure> checkCaFile(const BrokerAddress& broker,
                                                        const std::filesystem::path& file) {
  if (!broker.tls) return Failure{"--mqtt-ca needs mqtts:// (TLS) in --mqtt"};
  std::error_code error;
  // Reading a directory throws.
  std::ifstream in;
  if (std::filesystem::is_regular_file(file, error)) in.open(file);
  if (!in.is_open()) return Failure{"cannot read --mqtt-ca " + file.string()};
  const std::string pem{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  if (pem.find("-----BEGIN CERTIFICATE-----") == std::string::npos)
    return Failure{"--mqtt-ca " + file.string() + ": no PEM certificate (-----BEGIN CERTIFICATE-----) in it"};
  // Failure converts from a string too.
  return {boost::system::in_place_value, std::filesystem::absolute(file).string()};
}

boost::system::result<Credentials, Failure> readCredentials(const std::filesystem::path& file) {
  std::ifstream in(file);
  if (!in) return Failure{"cannot read --mqtt-credentials " + file.string()};
  Credentials credentials;
  std::getline(in, credentials.username);
  std::getline(in, credentials.password);
  for (std::string* line : {&credentials.username, &credentials.password}) {
    if (!line->empty() && line->back() == '\r') line->pop_back();
  }
  if (credentials.username.empty())
    return Failure{"--mqtt-credentials " + file.string() + ": the first line must be the user name"};
  return credentials;
}

std::string clientIdFor(std::string_view hostname, const std::filesystem::path& stateDir) {
  // FNV-1a: stable across builds and platforms, unlike std::hash.
  std::uint32_t hash = 2166136261u;
  std::string path = stateDir.lexically_normal().string();
  while (path.size() > 1 && path.back() == '/') path.pop_back();
  for (unsigned char c : path) hash = (hash ^ c) * 16777619u;
  char suffix[9];
  std::snprintf(suffix, sizeof suffix, "%08x", hash);
  // MQTT 3.1.1 brokers need only accept 23 characters; MQTT 5 ones, like
  // mosquitto, take more, but keep it short anyway.
  return "tinyfaas-" + std::string(hostname.substr(0, 32)) + "-" + suffix;
}

}  // namespace tinyfaas::mqtt_triggers
