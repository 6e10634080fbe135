#pragma once
// Where the broker is and who the node is to it: --mqtt URL, the
// --mqtt-ca and --mqtt-credentials files, and the node's fixed client id.

#include <filesystem>
#include <string>

#include <boost/system/result.hpp>

#include "core/failure.hpp"

namespace tinyfaas::mqtt_triggers {

struct BrokerAddress {
  std::string serverUri;  // as Paho wants it: tcp://HOST:PORT or ssl://HOST:PORT
  bool tls = false;
};

// mqtt://HOST[:PORT] (1883) or mqtts://HOST[:PORT] (8883); IPv6 hosts in
// brackets. Nothing else: no path, no user info (credentials go in a file,
// not in `ps`).
boost::system::result<BrokerAddress, Failure> parseBrokerUrl(std::string_view url);

// --mqtt-ca: the PEM file of the CAs Paho trusts (its trustStore) instead of
// the system's store, as an absolute path. Checked at start, so that a typo
// stops the daemon instead of failing every connect.
boost::system::result<std::string, Failure> checkCaFile(const BrokerAddress& broker, const std::filesystem::path& file);

struct Credentials {
  std::string username;
  std::string password;
};

// The file's first line is the user name, its second the password (which
// may hold spaces); a trailing newline or CR is not part of either.
boost::system::result<Credentials, Failure> readCredentials(const std::filesystem::path& file);

// tinyfaas-HOSTNAME-XXXXXXXX, XXXXXXXX from the state dir's path: the same
// after every restart (so the broker keeps the session and redelivers what
// was not acknowledged), different for two daemons on one host.
std::string clientIdFor(std::string_view hostname, const std::filesystem::path& stateDir);

}  // namespace tinyfaas::mqtt_triggers
