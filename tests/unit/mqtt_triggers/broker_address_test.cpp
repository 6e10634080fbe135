#include "mqtt_triggers/broker_address.hpp"

#include <fstream>

#include <gtest/gtest.h>

namespace tinyfaas::mqtt_triggers {
namespace {

std::string uri(std::string_view url) {
  auto parsed = parseBrokerUrl(url);
  return parsed ? parsed->serverUri + (parsed->tls ? " tls" : "") : "error: " + parsed.error().message;
}

TEST(BrokerUrl, MqttAndMqttsWithDefaultPorts) {
  EXPECT_EQ(uri("mqtt://127.0.0.1:1884"), "tcp://127.0.0.1:1884");
  EXPECT_EQ(uri("mqtt://broker.local"), "tcp://broker.local:1883");
  EXPECT_EQ(uri("mqtts://broker.local"), "ssl://broker.local:8883 tls");
  EXPECT_EQ(uri("mqtt://[::1]:1883/"), "tcp://[::1]:1883");
}

TEST(BrokerUrl, RefusesAnythingElse) {
  const std::string expected = "error: --mqtt must be mqtt://HOST[:PORT] or mqtts://HOST[:PORT], got ";
  EXPECT_EQ(uri("tcp://broker:1883"), expected + "\"tcp://broker:1883\"");
  EXPECT_EQ(uri("broker:1883"), expected + "\"broker:1883\"");
  EXPECT_EQ(uri("mqtt://user:secret@broker"), expected + "\"mqtt://user:secret@broker\"");
  EXPECT_EQ(uri("mqtt://broker/topic"), expected + "\"mqtt://broker/topic\"");
  EXPECT_EQ(uri("mqtt://broker:0"), expected + "\"mqtt://broker:0\"");
  EXPECT_EQ(uri("mqtt://"), expected + "\"mqtt://\"");
  EXPECT_EQ(uri(""), expected + "\"\"");
}

TEST(BrokerCredentials, UserOnTheFirstLinePasswordOnTheSecond) {
  const auto file = std::filesystem::temp_directory_path() / "tinyfaas-mqtt-credentials-test";
  std::ofstream(file) << "device\r\npass with spaces\n";
  auto credentials = readCredentials(file);
  ASSERT_TRUE(credentials) << credentials.error().message;
  EXPECT_EQ(credentials->username, "device");
  EXPECT_EQ(credentials->password, "pass with spaces");
  std::ofstream(file) << "\n";
  EXPECT_FALSE(readCredentials(file));
  std::filesystem::remove(file);
  EXPECT_FALSE(readCredentials(file));
}

TEST(BrokerCa, APemFileWithMqttsOnly) {
  const auto file = std::filesystem::temp_directory_path() / "tinyfaas-mqtt-ca-test.pem";
  std::ofstream(file) << "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
  auto tls = parseBrokerUrl("mqtts://broker");
  auto plain = parseBrokerUrl("mqtt://broker");
  ASSERT_TRUE(tls && plain);
  auto ca = checkCaFile(*tls, file);
  ASSERT_TRUE(ca) << ca.error().message;
  EXPECT_EQ(*ca, file.string());
  ASSERT_FALSE(checkCaFile(*plain, file));
  EXPECT_EQ(checkCaFile(*plain, file).error().message, "--mqtt-ca needs mqtts:// (TLS) in --mqtt");
  std::ofstream(file) << "not a certificate\n";
  ASSERT_FALSE(checkCaFile(*tls, file));
  EXPECT_EQ(checkCaFile(*tls, file).error().message,
            "--mqtt-ca " + file.string() + ": no PEM certificate (-----BEGIN CERTIFICATE-----) in it");
  std::filesystem::remove(file);
  ASSERT_FALSE(checkCaFile(*tls, file));
  EXPECT_EQ(checkCaFile(*tls, file).error().message, "cannot read --mqtt-ca " + file.string());
  EXPECT_EQ(checkCaFile(*tls, std::filesystem::temp_directory_path()).error().message,
            "cannot read --mqtt-ca " + std::filesystem::temp_directory_path().string());
}

TEST(ClientId, FixedPerHostAndStateDir) {
  EXPECT_EQ(clientIdFor("pi", "/var/lib/tinyfaas"), clientIdFor("pi", "/var/lib/tinyfaas/"));
  EXPECT_NE(clientIdFor("pi", "/var/lib/tinyfaas"), clientIdFor("pi", "/var/lib/other"));
  EXPECT_TRUE(clientIdFor("pi", "/var/lib/tinyfaas").starts_with("tinyfaas-pi-"));
}

}  // namespace
}  // namespace tinyfaas::mqtt_triggers
