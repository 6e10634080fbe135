// What whoever started the daemon reads to find its ports: the log line and
// the --ports-file JSON.
#include "daemon/bound_ports.hpp"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "test_support.hpp"

namespace tinyfaas {
namespace {

TEST(BoundPortsTest, DescribeNamesEveryListenerAndTheDisabledOnes) {
  EXPECT_EQ(describe({8080, 8000, 5683, -1}), "management 8080, HTTP 8000, CoAP 5683/udp, gRPC disabled");
}

TEST(BoundPortsTest, FileHoldsEveryPortAndNullForADisabledEndpoint) {
  test::TempDir dir;
  const auto file = dir / "ports.json";
  ASSERT_TRUE(writePortsFile(file, {41000, 41001, -1, 41003}));
  const auto ports = nlohmann::json::parse(test::readFile(file));
  EXPECT_EQ(ports, nlohmann::json::parse(R"({"management":41000,"http":41001,"coap":null,"grpc":41003})"));
  EXPECT_FALSE(std::filesystem::exists(dir / "ports.json.tmp"));
}

TEST(BoundPortsTest, ReplacesAFileAnEarlierRunLeft) {
  test::TempDir dir;
  dir.writeFile("ports.json", "{\"management\": 1}");
  ASSERT_TRUE(writePortsFile(dir / "ports.json", {2, 3, 4, 5}));
  EXPECT_EQ(nlohmann::json::parse(test::readFile(dir / "ports.json"))["management"], 2);
}

TEST(BoundPortsTest, AnUnwritablePlaceIsAnErrorNamingTheFlag) {
  test::TempDir dir;
  auto written = writePortsFile(dir / "missing" / "ports.json", {1, 2, 3, 4});
  ASSERT_FALSE(written);
  EXPECT_NE(written.error().find("--ports-file"), std::string::npos) << written.error();
}

}  // namespace
}  // namespace tinyfaas
