// The management API handler: the input is "METHOD TARGET\n" followed by the
// body, handed to ManagementApi::handle with a real FunctionManager over a
// fake backend (instances are in-process fake handlers), so uploads really
// unpack, start, get health-checked, routed and deleted. Every input must get
// a response; the handler must not crash or hang. Dependency installs run
// /bin/false (no network), and /uploadURL (which downloads) is left to the
// JSON fuzzer.

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/beast/http.hpp>
#include <boost/url/parse.hpp>
#include <spdlog/spdlog.h>

#include "api/management_api.hpp"
#include "fake_backend.hpp"
#include "proxy/router.hpp"

namespace {

namespace asio = boost::asio;
namespace fs = std::filesystem;
namespace http = boost::beast::http;
using namespace std::chrono_literals;

constexpr std::size_t kMaxFunctions = 4;

[[noreturn]] void fail(const std::string& what) {
  std::fprintf(stderr, "management_api_fuzzer: %s\n", what.c_str());
  std::abort();
}

template <typename T>
T runToEnd(asio::io_context& io, asio::awaitable<T> task, const char* what) {
  std::optional<T> result;
  std::exception_ptr error;
  asio::co_spawn(io, std::move(task), [&](std::exception_ptr e, T value) {
    error = e;
    result = std::move(value);
  });
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  while (!result && !error) {
    if (io.stopped()) io.restart();
    io.run_one_for(10ms);
    if (std::chrono::steady_clock::now() > deadline) fail(std::string(what) + " never finished");
  }
  if (error) std::rethrow_exception(error);  // a bug: handlers answer with responses
  return std::move(*result);
}

struct Api {
  asio::io_context io;
  fs::path stateDir;
  tinyfaas::Router router;
  tinyfaas::test::FakeBackend backend{io.get_executor()};
  tinyfaas::LogStore logs;
  std::unique_ptr<tinyfaas::FunctionManager> manager;
  std::unique_ptr<tinyfaas::ManagementApi> api;

  Api() {
    spdlog::set_level(spdlog::level::err);
    std::string pattern = (fs::temp_directory_path() / "tinyfaas-api-fuzz.XXXXXX").string();
    if (mkdtemp(pattern.data()) == nullptr) fail("cannot create a temp dir");
    stateDir = pattern;
    tinyfaas::ManagerOptions options;
    options.stateDir = stateDir;
    options.npm = "/bin/false";
    options.python = "/bin/false";
    options.healthTimeout = 5s;
    options.drainTimeout = 1s;
    manager = std::make_unique<tinyfaas::FunctionManager>(io.get_executor(), io.get_executor(), router, backend, logs,
                                                          options);
    if (auto prepared = manager->prepareStateDir(); !prepared) fail(prepared.error());
    tinyfaas::ManagementApiOptions apiOptions;
    apiOptions.ports = {5683, 8000, -1};
    api = std::make_unique<tinyfaas::ManagementApi>(*manager, logs, io.get_executor(), apiOptions);
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static Api* api = new Api;  // lives for the whole run
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const std::size_t eol = input.find('\n');
  const std::string_view line = input.substr(0, eol);
  const std::size_t space = line.find(' ');
  if (space == std::string_view::npos) return 0;
  const std::string_view method = line.substr(0, space);
  const std::string_view target = line.substr(space + 1);
  if (method.empty() || target.empty()) return 0;
  // Downloads would leave the machine.
  if (auto parsed = boost::urls::parse_origin_form(target); parsed && parsed->path() == "/uploadURL") return -1;

  tinyfaas::HttpRequest request{http::string_to_verb(method), target, 11};
  if (request.method() == http::verb::unknown) request.method_string(method);
  // A loopback Host: a daemon without tokens refuses others (api/local_origin.hpp).
  request.set(http::field::host, "127.0.0.1:8080");
  request.body() = std::string(eol == std::string_view::npos ? std::string_view() : input.substr(eol + 1));
  // As the server's parser hands it over: Content-Length whatever the
  // method (prepare_payload() throws for a TRACE with a body).
  request.content_length(request.body().size());

  const tinyfaas::HttpResponse response = runToEnd(api->io, api->api->handle(request), "a request");
  if (response.result_int() < 200 || response.result_int() > 599) fail("no proper status");
  if (api->manager->names().size() > kMaxFunctions)
    runToEnd(
        api->io,
        [&]() -> asio::awaitable<bool> {
          co_await api->manager->removeAll();
          co_return true;
        }(),
        "removeAll");
  return 0;
}
