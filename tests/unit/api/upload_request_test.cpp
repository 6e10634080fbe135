#include "api/upload_request.hpp"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "util/base64.hpp"

namespace tinyfaas {
namespace {

using nlohmann::json;

json validUpload() {
  return json{{"name", "echo"},
              {"env", "python3"},
              {"threads", 2},
              {"zip", encodeBase64("PK\x03\x04 pretend zip")},
              {"envs", json::array({"GREETING=hi"})}};
}

std::string uploadError(const json& body) {
  auto parsed = parseUpload(body.dump());
  return parsed ? "<accepted>" : parsed.error().message;
}

std::string uploadError(std::string_view raw) {
  auto parsed = parseUpload(raw);
  return parsed ? "<accepted>" : parsed.error().message;
}

json with(json body, const std::string& field, json value) {
  body[field] = std::move(value);
  return body;
}

json without(json body, const std::string& field) {
  body.erase(field);
  return body;
}

TEST(ParseUpload, AcceptsAValidUpload) {
  auto parsed = parseUpload(validUpload().dump());
  ASSERT_TRUE(parsed) << parsed.error().message;
  EXPECT_EQ(parsed->config.name, "echo");
  EXPECT_EQ(parsed->config.runtime, Runtime::python3);
  EXPECT_EQ(parsed->config.threads, 2);
  EXPECT_EQ(parsed->config.env, (std::vector<std::string>{"GREETING=hi"}));
  EXPECT_EQ(parsed->zip, "PK\x03\x04 pretend zip");
  EXPECT_TRUE(parsed->url.empty());
}

TEST(ParseUpload, NodesIsAWholeNumberOfNodes) {
  auto parsed = parseUpload(with(validUpload(), "nodes", 2).dump());
  ASSERT_TRUE(parsed) << parsed.error().message;
  EXPECT_EQ(parsed->nodes, 2);
  EXPECT_EQ(parseUpload(validUpload().dump())->nodes, 0);  // every node
  for (const json& bad : {json(0), json(-1), json("1"), json(1.5), json(true), json::array({1}), json{{"n", 1}},
                          json(18446744073709551615ull), json(1025)}) {
    const std::string error = uploadError(with(validUpload(), "nodes", bad));
    EXPECT_NE(error.find("\"nodes\""), std::string::npos) << bad.dump() << ": " << error;
  }
}

TEST(ParseUpload, AcceptsEveryRuntime) {
  EXPECT_EQ(parseUpload(with(validUpload(), "env", "nodejs").dump())->config.runtime, Runtime::nodejs);
  EXPECT_EQ(parseUpload(with(validUpload(), "env", "binary").dump())->config.runtime, Runtime::binary);
  EXPECT_EQ(parseUpload(with(validUpload(), "env", "go").dump())->config.runtime, Runtime::go);
}

TEST(ParseUpload, RejectsMalformedJson) {
  EXPECT_EQ(uploadError(std::string_view("{\"name\": ")), "request body is not valid JSON");
  EXPECT_EQ(uploadError(std::string_view("")), "request body is not valid JSON");
  EXPECT_EQ(uploadError(std::string_view("{'name': 'x'}")), "request body is not valid JSON");
}

TEST(ParseUpload, RejectsJsonThatIsNotAnObject) {
  for (const char* body : {"[]", "\"text\"", "42", "null", "true"})
    EXPECT_EQ(uploadError(std::string_view(body)), "request body must be a JSON object") << body;
}

TEST(ParseUpload, RequiresAStringName) {
  EXPECT_EQ(uploadError(without(validUpload(), "name")), "missing field \"name\"");
  EXPECT_EQ(uploadError(with(validUpload(), "name", 7)), "field \"name\" must be a string");
  EXPECT_EQ(uploadError(with(validUpload(), "name", nullptr)), "field \"name\" must be a string");
}

TEST(ParseUpload, RejectsBadNames) {
  for (const char* name : {"", "-ab", "ab-", "a_b", "a.b", "a/b", "..", "a b", "caf\xc3\xa9"}) {
    EXPECT_EQ(uploadError(with(validUpload(), "name", name)),
              "function name \"" + std::string(name) +
                  "\" must be 1 to 64 letters, digits and -, starting and ending with a letter or digit")
        << name;
  }
  EXPECT_NE(uploadError(with(validUpload(), "name", std::string(65, 'a'))), "<accepted>");
  EXPECT_EQ(uploadError(with(validUpload(), "name", std::string(64, 'a'))), "<accepted>");
}

TEST(ParseUpload, RequiresAKnownEnv) {
  EXPECT_EQ(uploadError(without(validUpload(), "env")), "missing field \"env\"");
  EXPECT_EQ(uploadError(with(validUpload(), "env", 3)), "field \"env\" must be a string");
  EXPECT_EQ(uploadError(with(validUpload(), "env", "ruby")),
            "unknown env \"ruby\" (use nodejs, python3, binary or go)");
  EXPECT_EQ(uploadError(with(validUpload(), "env", "Python3")),
            "unknown env \"Python3\" (use nodejs, python3, binary or go)");
}

TEST(ParseUpload, RequiresThreadsBetween1And64) {
  EXPECT_EQ(uploadError(without(validUpload(), "threads")), "missing field \"threads\"");
  EXPECT_EQ(uploadError(with(validUpload(), "threads", 0)), "threads must be between 1 and 64, got 0");
  EXPECT_EQ(uploadError(with(validUpload(), "threads", 65)), "threads must be between 1 and 64, got 65");
  EXPECT_EQ(uploadError(with(validUpload(), "threads", -1)), "threads must be between 1 and 64, got -1");
  EXPECT_EQ(uploadError(with(validUpload(), "threads", 1.5)), "field \"threads\" must be an integer");
  EXPECT_EQ(uploadError(with(validUpload(), "threads", "2")), "field \"threads\" must be an integer");
  EXPECT_EQ(uploadError(with(validUpload(), "threads", true)), "field \"threads\" must be an integer");
  EXPECT_EQ(uploadError(with(validUpload(), "threads", nullptr)), "field \"threads\" must be an integer");
  EXPECT_EQ(uploadError(with(validUpload(), "threads", 1)), "<accepted>");
  EXPECT_EQ(uploadError(with(validUpload(), "threads", 64)), "<accepted>");
}

TEST(ParseUpload, RejectsHugeThreadCountsWithoutWrapping) {
  // 2^64-1 parses as an unsigned integer; it must not read as -1 (or 1).
  auto error =
      uploadError(std::string_view(R"({"name":"echo","env":"python3","threads":18446744073709551615,"zip":"eA=="})"));
  EXPECT_EQ(error.rfind("threads must be between 1 and 64", 0), 0u) << error;
  EXPECT_EQ(error.find("got -1"), std::string::npos) << error;
}

TEST(ParseUpload, RequiresValidBase64Zip) {
  EXPECT_EQ(uploadError(without(validUpload(), "zip")), "missing field \"zip\"");
  EXPECT_EQ(uploadError(with(validUpload(), "zip", 12)), "field \"zip\" must be a string");
  EXPECT_EQ(uploadError(with(validUpload(), "zip", "not base64!")), "field \"zip\" is not valid base64");
  EXPECT_EQ(uploadError(with(validUpload(), "zip", "abc")), "field \"zip\" is not valid base64");
  EXPECT_EQ(uploadError(with(validUpload(), "zip", "")), "field \"zip\" is empty");
  EXPECT_EQ(uploadError(with(validUpload(), "zip", "\n")), "field \"zip\" is empty");
  // Wrapped base64 (as `base64` writes it) is fine.
  auto parsed = parseUpload(with(validUpload(), "zip", "UEsD\nBA==\n").dump());
  ASSERT_TRUE(parsed) << parsed.error().message;
  EXPECT_EQ(parsed->zip, "PK\x03\x04");
}

TEST(ParseUpload, EnvsMustBeAListOfKeyValueStrings) {
  const std::string notAList = "field \"envs\" must be a list of \"KEY=VALUE\" strings";
  EXPECT_EQ(uploadError(with(validUpload(), "envs", "A=1")), notAList);
  EXPECT_EQ(uploadError(with(validUpload(), "envs", json{{"A", "1"}})), notAList);
  EXPECT_EQ(uploadError(with(validUpload(), "envs", json::array({"A=1", 2}))), notAList);
  for (const char* entry : {"NOEQUALS", "=x", "1A=x", "A-B=x", "A B=x", "\xc3\xa9=x"}) {
    EXPECT_EQ(uploadError(with(validUpload(), "envs", json::array({entry}))),
              "bad envs entry \"" + std::string(entry) + "\": expected KEY=VALUE with KEY of letters, digits and _")
        << entry;
  }
  EXPECT_EQ(uploadError(with(validUpload(), "envs", json::array({std::string("A=x\0y", 5)}))),
            "bad envs entry: contains a NUL byte");
}

TEST(ParseUpload, KeepsEverythingAfterTheFirstEqualsAsValue) {
  auto parsed = parseUpload(with(validUpload(), "envs", json::array({"A_1=x=y", "_B=", "c=d e"})).dump());
  ASSERT_TRUE(parsed) << parsed.error().message;
  EXPECT_EQ(parsed->config.env, (std::vector<std::string>{"A_1=x=y", "_B=", "c=d e"}));
}

TEST(ParseUpload, EnvsMayBeNullEmptyOrAbsent) {
  EXPECT_TRUE(parseUpload(with(validUpload(), "envs", nullptr).dump())->config.env.empty());
  EXPECT_TRUE(parseUpload(with(validUpload(), "envs", json::array()).dump())->config.env.empty());
  EXPECT_TRUE(parseUpload(without(validUpload(), "envs").dump())->config.env.empty());
}

TEST(ParseUpload, ReportsTheFirstProblemInFieldOrder) {
  json body = {{"name", "bad_name"}, {"env", "ruby"}, {"threads", 0}};
  EXPECT_EQ(uploadError(body).rfind("function name", 0), 0u);
}

TEST(ParseUpload, ResourceLimitsHaveDefaultsAndBounds) {
  auto defaults = parseUpload(validUpload().dump());
  ASSERT_TRUE(defaults);
  EXPECT_EQ(defaults->config.limits.memoryMb, ResourceLimits{}.memoryMb);
  EXPECT_FALSE(defaults->config.limits.egress);

  json limited = validUpload();
  limited["memory_mb"] = 512;
  limited["cpus"] = 0.5;
  limited["egress"] = true;
  auto parsed = parseUpload(limited.dump());
  ASSERT_TRUE(parsed) << parsed.error().message;
  EXPECT_EQ(parsed->config.limits.memoryMb, 512);
  EXPECT_DOUBLE_EQ(parsed->config.limits.cpus, 0.5);
  EXPECT_TRUE(parsed->config.limits.egress);

  EXPECT_EQ(uploadError(with(validUpload(), "memory_mb", 8)), "memory_mb must be between 16 and 65536, got 8");
  EXPECT_EQ(uploadError(with(validUpload(), "memory_mb", "1g")), "field \"memory_mb\" must be an integer");
  EXPECT_EQ(uploadError(with(validUpload(), "cpus", 0)), "cpus must be between 0.01 and 64");
  EXPECT_EQ(uploadError(with(validUpload(), "cpus", "1")), "field \"cpus\" must be a number");
  EXPECT_EQ(uploadError(with(validUpload(), "egress", "yes")), "field \"egress\" must be true or false");
  EXPECT_EQ(uploadError(with(validUpload(), "memory_mb", nullptr)), "<accepted>");
}

TEST(ParseUpload, CallLimitsHaveDefaultsAndBounds) {
  auto defaults = parseUpload(validUpload().dump());
  ASSERT_TRUE(defaults);
  EXPECT_EQ(defaults->config.calls.timeout.count(), 0);  // the daemon's --call-timeout
  EXPECT_EQ(defaults->config.calls.concurrency, 128);
  EXPECT_EQ(defaults->config.calls.queue, 1024);

  json limited = validUpload();
  limited["timeout"] = 2.5;
  limited["concurrency"] = 1;
  limited["queue"] = 0;
  auto parsed = parseUpload(limited.dump());
  ASSERT_TRUE(parsed) << parsed.error().message;
  EXPECT_EQ(parsed->config.calls.timeout, std::chrono::milliseconds(2500));
  EXPECT_EQ(parsed->config.calls.concurrency, 1);
  EXPECT_EQ(parsed->config.calls.queue, 0);
  EXPECT_EQ(parseUpload(with(validUpload(), "timeout", 3600).dump())->config.calls.timeout, std::chrono::seconds(3600));

  EXPECT_EQ(uploadError(with(validUpload(), "timeout", 0)), "timeout must be between 0.001 and 3600 seconds, got 0");
  EXPECT_EQ(uploadError(with(validUpload(), "timeout", -1)), "timeout must be between 0.001 and 3600 seconds, got -1");
  EXPECT_EQ(uploadError(with(validUpload(), "timeout", 3601)),
            "timeout must be between 0.001 and 3600 seconds, got 3601");
  EXPECT_EQ(uploadError(with(validUpload(), "timeout", "5s")), "field \"timeout\" must be a number of seconds");
  EXPECT_EQ(uploadError(with(validUpload(), "concurrency", 0)),
            "concurrency must be an integer between 1 and 4096, got 0");
  EXPECT_EQ(uploadError(with(validUpload(), "concurrency", 18446744073709551615ull)),
            "concurrency must be an integer between 1 and 4096, got 18446744073709551615");
  EXPECT_EQ(uploadError(with(validUpload(), "concurrency", 1.5)),
            "field \"concurrency\" must be an integer between 1 and 4096");
  EXPECT_EQ(uploadError(with(validUpload(), "queue", -1)), "queue must be an integer between 0 and 65536, got -1");
  EXPECT_EQ(uploadError(with(validUpload(), "queue", 65537)),
            "queue must be an integer between 0 and 65536, got 65537");
  EXPECT_EQ(uploadError(with(validUpload(), "queue", "10")), "field \"queue\" must be an integer between 0 and 65536");
  for (const char* field : {"timeout", "concurrency", "queue"})
    EXPECT_EQ(uploadError(with(validUpload(), field, nullptr)), "<accepted>") << field;
}

TEST(UploadRequest, AsyncRetryPolicy) {
  auto parsed = parseUpload(with(validUpload(), "async", json{{"retries", 0}, {"backoff_ms", 10}}).dump());
  ASSERT_TRUE(parsed) << parsed.error().message;
  EXPECT_EQ(parsed->config.calls.async.retries, 0);
  EXPECT_EQ(parsed->config.calls.async.backoff, std::chrono::milliseconds(10));
  // Absent: 2 retries from 500 ms; either field alone keeps the other's default.
  auto plain = parseUpload(validUpload().dump());
  ASSERT_TRUE(plain);
  EXPECT_EQ(plain->config.calls.async.retries, 2);
  EXPECT_EQ(plain->config.calls.async.backoff, std::chrono::milliseconds(500));
  auto retriesOnly = parseUpload(with(validUpload(), "async", json{{"retries", 7}}).dump());
  ASSERT_TRUE(retriesOnly);
  EXPECT_EQ(retriesOnly->config.calls.async.retries, 7);
  EXPECT_EQ(retriesOnly->config.calls.async.backoff, std::chrono::milliseconds(500));

  EXPECT_EQ(uploadError(with(validUpload(), "async", json{{"retries", -1}})),
            "retries must be an integer between 0 and 100, got -1");
  EXPECT_EQ(uploadError(with(validUpload(), "async", json{{"retries", 101}})),
            "retries must be an integer between 0 and 100, got 101");
  EXPECT_EQ(uploadError(with(validUpload(), "async", json{{"backoff_ms", 5}})),
            "backoff_ms must be an integer between 10 and 3600000, got 5");
  EXPECT_EQ(uploadError(with(validUpload(), "async", json{{"backoff_ms", 1.5}})),
            "field \"backoff_ms\" must be an integer between 10 and 3600000");
  EXPECT_EQ(uploadError(with(validUpload(), "async", 3)),
            "field \"async\" must be an object like {\"retries\": 2, \"backoff_ms\": 500}");
  EXPECT_EQ(uploadError(with(validUpload(), "async", json{{"retry", 3}})),
            "unknown field \"retry\" in \"async\" (use retries and backoff_ms)");
}

TEST(FunctionConfigJson, RoundTripsTheCallLimits) {
  FunctionConfig config;
  config.name = "echo";
  config.calls = {std::chrono::milliseconds(1500), 3, 7, {5, std::chrono::milliseconds(20)}};
  auto back = parseFunctionConfig(functionConfigJson(config));
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_EQ(back->calls.timeout, std::chrono::milliseconds(1500));
  EXPECT_EQ(back->calls.concurrency, 3);
  EXPECT_EQ(back->calls.queue, 7);
  EXPECT_EQ(back->calls.async.retries, 5);
  EXPECT_EQ(back->calls.async.backoff, std::chrono::milliseconds(20));
  // No timeout of its own is kept as none, not as the daemon's of the day.
  config.calls.timeout = std::chrono::milliseconds(0);
  EXPECT_TRUE(functionConfigJson(config).at("timeout").is_null());
  EXPECT_EQ(parseFunctionConfig(functionConfigJson(config))->calls.timeout.count(), 0);
}

json validUploadUrl() {
  return json{{"name", "echo"}, {"env", "nodejs"}, {"threads", 1}, {"url", "https://example.org/f.zip"}};
}

std::string uploadUrlError(const json& body) {
  auto parsed = parseUploadUrl(body.dump());
  return parsed ? "<accepted>" : parsed.error().message;
}

TEST(ParseUpload, UnknownFieldsAreNamedWithTheClosestKnownOne) {
  EXPECT_EQ(uploadError(with(validUpload(), "memroy_mb", 128)),
            "unknown field \"memroy_mb\" (did you mean \"memory_mb\"?)");
  EXPECT_EQ(uploadError(with(validUpload(), "thread", 2)), "unknown field \"thread\" (did you mean \"threads\"?)");
  EXPECT_EQ(uploadError(with(validUpload(), "colour", "red")), "unknown field \"colour\"");
  // /uploadURL's own fields are not /upload's.
  EXPECT_EQ(uploadError(with(validUpload(), "url", "http://x/f.zip")), "unknown field \"url\"");
  EXPECT_EQ(uploadError(with(validUpload(), std::string(200, 'x'), 1)).size(),
            std::string("unknown field ").size() + 80);
}

TEST(ParseUpload, EveryDocumentedFieldIsKnown) {
  json body = validUpload();
  body.update(json{{"memory_mb", 64},
                   {"cpus", 0.5},
                   {"egress", false},
                   {"timeout", 5},
                   {"concurrency", 2},
                   {"queue", 3},
                   {"min_instances", 0},
                   {"max_instances", 2},
                   {"target_in_flight", 4},
                   {"idle_seconds", 10}});
  EXPECT_EQ(uploadError(body), "<accepted>");
}

TEST(ParseUpload, ContradictoryScalingIsRefused) {
  EXPECT_EQ(uploadError(with(with(validUpload(), "threads", 2), "max_instances", 1)),
            "threads (2) exceeds max_instances (1): with scaling fields threads is only the default of "
            "max_instances, so send one of them");
  EXPECT_EQ(uploadError(with(with(validUpload(), "threads", 2), "min_instances", 3)),
            "min_instances (3) exceeds threads (2), which is max_instances when that is not given");
  EXPECT_EQ(uploadError(with(with(with(validUpload(), "threads", 1), "min_instances", 3), "max_instances", 2)),
            "min_instances (3) must not exceed max_instances (2)");
  EXPECT_EQ(uploadError(with(with(validUpload(), "threads", 1), "max_instances", 0)),
            "max_instances must be an integer between 1 and 64, got 0");
  // Agreeing combinations: threads is the maximum or below it.
  EXPECT_EQ(uploadError(with(with(validUpload(), "threads", 3), "max_instances", 3)), "<accepted>");
  EXPECT_EQ(uploadError(with(with(validUpload(), "threads", 1), "max_instances", 5)), "<accepted>");
  auto scaled = parseUpload(with(with(validUpload(), "threads", 3), "min_instances", 0).dump());
  ASSERT_TRUE(scaled);
  EXPECT_EQ(scaled->config.scaling.minInstances, 0);
  EXPECT_EQ(scaled->config.scaling.maxInstances, 3);
}

TEST(ParseUploadUrl, AcceptsAValidRequest) {
  json body = validUploadUrl();
  body["subfolder_path"] = "functions/echo";
  auto parsed = parseUploadUrl(body.dump());
  ASSERT_TRUE(parsed) << parsed.error().message;
  EXPECT_EQ(parsed->config.name, "echo");
  EXPECT_EQ(parsed->config.runtime, Runtime::nodejs);
  EXPECT_EQ(parsed->url, "https://example.org/f.zip");
  EXPECT_EQ(parsed->subfolder, "functions/echo");
  EXPECT_TRUE(parsed->zip.empty());
}

TEST(ParseUploadUrl, SharesTheConfigValidation) {
  EXPECT_EQ(uploadUrlError(with(validUploadUrl(), "threads", 0)), "threads must be between 1 and 64, got 0");
  EXPECT_EQ(uploadUrlError(with(validUploadUrl(), "queue", -1)),
            "queue must be an integer between 0 and 65536, got -1");
  EXPECT_EQ(parseUploadUrl(with(validUploadUrl(), "timeout", 2).dump())->config.calls.timeout, std::chrono::seconds(2));
  EXPECT_EQ(uploadUrlError(with(validUploadUrl(), "name", "a.b")),
            "function name \"a.b\" must be 1 to 64 letters, digits and -, starting and ending with a letter or digit");
  EXPECT_EQ(uploadUrlError(json::array()), "request body must be a JSON object");
}

TEST(ParseUploadUrl, RequiresAnHttpUrl) {
  EXPECT_EQ(uploadUrlError(without(validUploadUrl(), "url")), "missing field \"url\"");
  EXPECT_EQ(uploadUrlError(with(validUploadUrl(), "url", 1)), "field \"url\" must be a string");
  for (const char* url : {"ftp://x/f.zip", "file:///etc/passwd", "example.org/f.zip", "", "HTTP//x"}) {
    EXPECT_EQ(uploadUrlError(with(validUploadUrl(), "url", url)),
              "url \"" + std::string(url) + "\" must start with http:// or https://")
        << url;
  }
  EXPECT_EQ(uploadUrlError(with(validUploadUrl(), "url", "http://127.0.0.1/f.zip")), "<accepted>");
}

TEST(ParseUploadUrl, KnowsItsOwnFieldsOnly) {
  EXPECT_EQ(uploadUrlError(with(validUploadUrl(), "subfolder", "x")),
            "unknown field \"subfolder\" (did you mean \"subfolder_path\"?)");
  EXPECT_EQ(uploadUrlError(with(validUploadUrl(), "zip", "UEs=")), "unknown field \"zip\"");
}

TEST(ParseUploadUrl, SubfolderMustBeAStringOrNull) {
  EXPECT_EQ(uploadUrlError(with(validUploadUrl(), "subfolder_path", 3)), "field \"subfolder_path\" must be a string");
  auto parsed = parseUploadUrl(with(validUploadUrl(), "subfolder_path", nullptr).dump());
  ASSERT_TRUE(parsed);
  EXPECT_EQ(parsed->subfolder, "");
}

TEST(ParseDelete, ReturnsTheName) {
  auto name = parseDelete(R"({"name":"echo"})");
  ASSERT_TRUE(name) << name.error().message;
  EXPECT_EQ(*name, "echo");
}

TEST(ParseDelete, RejectsEveryBadBody) {
  auto error = [](std::string_view body) {
    auto parsed = parseDelete(body);
    return parsed ? "<accepted>" : parsed.error().message;
  };
  EXPECT_EQ(error("nope"), "request body is not valid JSON");
  EXPECT_EQ(error("[\"echo\"]"), "request body must be a JSON object");
  EXPECT_EQ(error("{}"), "missing field \"name\"");
  EXPECT_EQ(error(R"({"name":1})"), "field \"name\" must be a string");
  EXPECT_EQ(
      error(R"({"name":"../etc"})"),
      "function name \"../etc\" must be 1 to 64 letters, digits and -, starting and ending with a letter or digit");
}

// An initializer_list, not a json: clang takes `json{one}` as a copy of
// `one`, GCC as a one-element array.
json withTriggersField(json value) { return with(validUpload(), "triggers", std::move(value)); }
json withTriggers(std::initializer_list<json> triggers) {
  json list = json::array();
  for (const json& t : triggers) list.push_back(t);
  return withTriggersField(std::move(list));
}
json trigger(json fields) {
  json t{{"type", "mqtt"}, {"topic", "sensors/+/temp"}};
  if (fields.is_object()) t.update(fields);
  return t;
}

TEST(ParseUploadTriggers, AcceptsMqttTriggersWithDefaults) {
  auto parsed = parseUpload(
      withTriggers({trigger({{"reply_topic", "out/temp"}}), trigger({{"topic", "sensors/#"}, {"qos", 0}})}).dump());
  ASSERT_TRUE(parsed) << parsed.error().message;
  ASSERT_EQ(parsed->config.triggers.size(), 2u);
  EXPECT_EQ(parsed->config.triggers[0], (MqttTrigger{"sensors/+/temp", "out/temp", 1}));
  EXPECT_EQ(parsed->config.triggers[1], (MqttTrigger{"sensors/#", "", 0}));
  EXPECT_TRUE(parseUpload(withTriggers({}).dump())->config.triggers.empty());
  EXPECT_TRUE(parseUpload(withTriggers({trigger({{"topic", "#"}})}).dump()));
  EXPECT_TRUE(parseUpload(withTriggers({trigger({{"topic", "+/+/x"}})}).dump()));
}

TEST(ParseUploadTriggers, RefusesBadTopicFilters) {
  EXPECT_EQ(uploadError(withTriggers({trigger({{"topic", "a/#/b"}})})),
            "triggers[0]: topic filter has # before its last level");
  EXPECT_EQ(uploadError(withTriggers({trigger({{"topic", "a/b#"}})})),
            "triggers[0]: topic filter uses + or # inside a level (they must be a whole level)");
  EXPECT_EQ(uploadError(withTriggers({trigger({{"topic", "a/x+/b"}})})),
            "triggers[0]: topic filter uses + or # inside a level (they must be a whole level)");
  EXPECT_EQ(uploadError(withTriggers({trigger({{"topic", ""}})})), "triggers[0]: topic filter must not be empty");
  EXPECT_EQ(uploadError(withTriggers({trigger({}), trigger({{"topic", std::string("a\0b", 3)}})})),
            "triggers[1]: topic filter contains a NUL byte");
  EXPECT_EQ(uploadError(withTriggers({trigger({{"topic", std::string(kMaxTopicBytes + 1, 'a')}})})),
            "triggers[0]: topic filter is longer than 1024 bytes");
  EXPECT_EQ(uploadError(withTriggers({trigger({{"topic", "$SYS/#"}})})),
            "triggers[0]: topic filter must not start with $ (those topics are the broker's)");
  EXPECT_EQ(uploadError(withTriggers({trigger({{"topic", 5}})})), "triggers[0]: field \"topic\" must be a string");
  EXPECT_EQ(uploadError(withTriggers({json{{"type", "mqtt"}}})), "triggers[0]: missing field \"topic\"");
}

TEST(ParseUploadTriggers, RefusesTooManyTriggers) {
  json many = json::array();
  for (std::size_t i = 0; i <= kMaxTriggers; ++i) many.push_back(trigger({}));
  EXPECT_EQ(uploadError(withTriggersField(many)), "at most 16 triggers per function");
}

TEST(ParseUploadTriggers, RefusesUnknownTypesFieldsAndQos) {
  EXPECT_EQ(uploadError(withTriggers({trigger({{"type", "kafka"}})})),
            "triggers[0]: unknown type \"kafka\" (use mqtt)");
  EXPECT_EQ(uploadError(withTriggers({json{{"topic", "a"}}})), "triggers[0]: missing field \"type\"");
  EXPECT_EQ(uploadError(withTriggers({trigger({{"qos", 2}})})),
            "triggers[0]: qos must be an integer between 0 and 1, got 2");
  EXPECT_EQ(uploadError(withTriggers({trigger({{"qos", "1"}})})),
            "triggers[0]: field \"qos\" must be an integer between 0 and 1");
  EXPECT_EQ(uploadError(withTriggers({trigger({{"retain", true}})})),
            "unknown field \"retain\" in triggers[0] (use type, topic, reply_topic and qos)");
  EXPECT_EQ(uploadError(withTriggersField(json{{"topic", "a"}})),
            "field \"triggers\" must be a list like [{\"type\": \"mqtt\", \"topic\": \"sensors/+/temp\"}]");
  EXPECT_EQ(uploadError(withTriggers({"a/b"})), "triggers[0] must be an object");
  EXPECT_EQ(uploadError(with(validUpload(), "trigger", json::array())),
            "unknown field \"trigger\" (did you mean \"triggers\"?)");
}

TEST(ParseUploadTriggers, RefusesWildcardsInReplyTopics) {
  EXPECT_EQ(uploadError(withTriggers({trigger({{"reply_topic", "out/+"}})})),
            "triggers[0]: reply_topic must not contain the wildcards + or #");
  EXPECT_EQ(uploadError(withTriggers({trigger({{"reply_topic", "out/#"}})})),
            "triggers[0]: reply_topic must not contain the wildcards + or #");
  EXPECT_EQ(uploadError(withTriggers({trigger({{"reply_topic", ""}})})), "triggers[0]: reply_topic must not be empty");
  EXPECT_EQ(uploadError(withTriggers({trigger({{"reply_topic", 1}})})),
            "triggers[0]: field \"reply_topic\" must be a string");
}

TEST(ParseUploadTriggers, StoredConfigKeepsTriggers) {
  auto parsed = parseUpload(withTriggers({trigger({{"reply_topic", "out/t"}, {"qos", 0}})}).dump());
  ASSERT_TRUE(parsed);
  auto again = parseFunctionConfig(functionConfigJson(parsed->config));
  ASSERT_TRUE(again) << again.error().message;
  EXPECT_EQ(again->triggers, parsed->config.triggers);
}

}  // namespace
}  // namespace tinyfaas
