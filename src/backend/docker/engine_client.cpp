#include "backend/docker/engine_client.hpp"

#include <algorithm>
#include <array>
#include <cerrno>

#include <boost/asio/local/stream_protocol.hpp>
#include <boost/beast/core/basic_stream.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/file_body.hpp>
#include <nlohmann/json.hpp>

#include "core/async.hpp"

namespace tinyfaas::docker {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace fs = std::filesystem;
using UnixStream = beast::basic_stream<asio::local::stream_protocol, asio::any_io_executor>;

namespace {

constexpr std::size_t kMaxMessageChars = 300;

std::string oneLine(std::string_view text) {
  std::string out;
  out.reserve(std::min(text.size(), kMaxMessageChars));
  for (char c : text) {
    if (out.size() >= kMaxMessageChars) {
      out += "...";
      break;
    }
    out += (c == '\n' || c == '\r' || c == '\t') ? ' ' : c;
  }
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

std::string seconds(std::chrono::milliseconds d) {
  const auto ms = d.count();
  return ms % 1000 == 0 ? std::to_string(ms / 1000) + " s" : std::to_string(ms) + " ms";
}

std::string connectFailure(const fs::path& socket, const boost::system::error_code& ec, const RequestOptions& options) {
  if (ec == beast::error::timeout)
    return "the Docker engine did not accept a connection on " + socket.string() + " within " +
           seconds(options.timeout);
  if (ec == asio::error::access_denied)
    return "no permission to use the Docker engine socket " + socket.string() +
           " (run tinyfaas as root or as a member of the docker group)";
  if (ec == asio::error::connection_refused ||
      ec == boost::system::error_code(ENOENT, boost::system::system_category()))
    return "the Docker engine is not running: nothing answers on " + socket.string() + " (" + ec.message() +
           "); start dockerd or choose --backend process";
  return "cannot connect to the Docker engine at " + socket.string() + ": " + ec.message();
}

std::string exchangeFailure(std::string_view what, const boost::system::error_code& ec, const RequestOptions& options) {
  if (ec == beast::error::timeout)
    return "the Docker engine did not answer " + std::string(what) + " within " + seconds(options.timeout);
  if (ec == http::error::body_limit)
    return "the Docker engine's answer to " + std::string(what) + " is larger than " +
           std::to_string(options.maxBodyBytes) + " bytes";
  return "talking to the Docker engine (" + std::string(what) + ") failed: " + ec.message();
}

template <class Request>
void setCommonFields(Request& request) {
  // Go's HTTP server insists on a Host header in HTTP/1.1.
  request.set(http::field::host, "docker");
  request.set(http::field::user_agent, "tinyfaas");
  request.keep_alive(false);
}

EngineResponse toResponse(http::response<http::string_body>&& message) {
  EngineResponse response;
  response.status = message.result_int();
  response.contentType = std::string(message[http::field::content_type]);
  response.body = std::move(message.body());
  return response;
}

}  // namespace

bool EngineResponse::is(std::initializer_list<unsigned> accepted) const {
  for (unsigned code : accepted) {
    if (status == code) return true;
  }
  return false;
}

std::string EngineResponse::message() const {
  auto parsed = nlohmann::json::parse(body, nullptr, false);
  if (!parsed.is_discarded() && parsed.is_object()) {
    auto it = parsed.find("message");
    if (it != parsed.end() && it->is_string()) return oneLine(it->get<std::string>());
  }
  std::string text = oneLine(body);
  return text.empty() ? "status " + std::to_string(status) : text;
}

void StreamCanceller::cancel() {
  cancelled_ = true;
  if (close_) close_();
}

// Listed in its client while a request's connection is open, so that
// closeAll() reaches it.
class EngineClient::OpenConnection {
 public:
  OpenConnection(EngineClient& client, UnixStream& stream)
      : client_(client), place_(client.open_.insert(client.open_.end(), [&stream] { stream.close(); })) {}
  OpenConnection(const OpenConnection&) = delete;
  OpenConnection& operator=(const OpenConnection&) = delete;
  ~OpenConnection() { client_.open_.erase(place_); }

 private:
  EngineClient& client_;
  std::list<std::function<void()>>::iterator place_;
};

std::string EngineClient::shuttingDown(std::string_view what) {
  return std::string(what) + ": " + std::string(kShuttingDown);
}

std::string EngineClient::failure(std::string_view what, std::string why) const {
  // The socket's own error after closeAll() (operation aborted, bad file
  // descriptor) would hide why.
  return closed_ ? shuttingDown(what) : why;
}

void EngineClient::closeAll() {
  closed_ = true;
  // A closer's connection fails once its coroutine resumes, later: none of
  // them leaves the list while it is walked.
  for (auto& close : open_) close();
}

EngineClient::EngineClient(asio::any_io_executor executor, fs::path socket, std::string apiPrefix)
    : executor_(std::move(executor)), socket_(std::move(socket)), apiPrefix_(std::move(apiPrefix)) {}

template <class Request>
asio::awaitable<EngineResult> EngineClient::exchange(Request& request, const RequestOptions& options) {
  const std::string what = std::string(request.method_string()) + " " + std::string(request.target());
  if (closed_) co_return shuttingDown(what);
  UnixStream stream(executor_);
  const OpenConnection open(*this, stream);
  // One deadline for the whole exchange: basic_stream applies the same expiry
  // to every operation until it is set again.
  stream.expires_after(options.timeout);
  auto [connectError] =
      co_await stream.async_connect(asio::local::stream_protocol::endpoint(socket_.string()), useTuple);
  if (connectError) co_return failure(what, connectFailure(socket_, connectError, options));

  auto [writeError, written] = co_await http::async_write(stream, request, useTuple);
  (void)written;
  if (writeError) co_return failure(what, exchangeFailure(what, writeError, options));

  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(options.maxBodyBytes);
  auto [readError, read] = co_await http::async_read(stream, buffer, parser, useTuple);
  (void)read;
  if (readError) co_return failure(what, exchangeFailure(what, readError, options));
  co_return toResponse(parser.release());
}

asio::awaitable<EngineResult> EngineClient::request(http::verb method, std::string target, std::string body,
                                                    RequestOptions options) {
  http::request<http::string_body> request{method, apiPrefix_ + target, 11};
  setCommonFields(request);
  if (!body.empty()) request.set(http::field::content_type, options.contentType);
  request.body() = std::move(body);
  request.prepare_payload();
  co_return co_await exchange(request, options);
}

asio::awaitable<EngineResult> EngineClient::upload(http::verb method, std::string target, fs::path file,
                                                   RequestOptions options) {
  http::request<http::file_body> request{method, apiPrefix_ + target, 11};
  setCommonFields(request);
  request.set(http::field::content_type, options.contentType);
  beast::error_code ec;
  request.body().open(file.c_str(), beast::file_mode::scan, ec);
  if (ec) co_return "cannot open " + file.string() + ": " + ec.message();
  request.prepare_payload();
  co_return co_await exchange(request, options);
}

asio::awaitable<EngineResult> EngineClient::stream(http::verb method, std::string target,
                                                   std::function<void(std::string_view)> onData, RequestOptions options,
                                                   std::shared_ptr<StreamCanceller> canceller) {
  http::request<http::empty_body> request{method, apiPrefix_ + target, 11};
  setCommonFields(request);
  request.prepare_payload();
  const std::string what = std::string(request.method_string()) + " " + std::string(request.target());

  if (closed_) co_return shuttingDown(what);
  auto stream = std::make_shared<UnixStream>(executor_);
  const OpenConnection open(*this, *stream);
  if (canceller) {
    if (canceller->cancelled()) co_return what + ": cancelled";
    canceller->close_ = [weak = std::weak_ptr<UnixStream>(stream)] {
      if (auto s = weak.lock()) s->close();
    };
  }
  struct Detach {
    std::shared_ptr<StreamCanceller> canceller;
    ~Detach() {
      if (canceller) canceller->close_ = nullptr;
    }
  } detach{canceller};

  stream->expires_after(options.timeout);
  auto [connectError] =
      co_await stream->async_connect(asio::local::stream_protocol::endpoint(socket_.string()), useTuple);
  if (connectError) co_return failure(what, connectFailure(socket_, connectError, options));
  auto [writeError, written] = co_await http::async_write(*stream, request, useTuple);
  (void)written;
  if (writeError) co_return failure(what, exchangeFailure(what, writeError, options));

  beast::flat_buffer buffer;
  http::response_parser<http::buffer_body> parser;
  parser.body_limit(boost::none);  // never held in memory: handed on piecewise
  auto [headerError, headerBytes] = co_await http::async_read_header(*stream, buffer, parser, useTuple);
  (void)headerBytes;
  if (headerError) co_return failure(what, exchangeFailure(what, headerError, options));

  const unsigned status = parser.get().result_int();
  if (status < 200 || status >= 300) {
    // An error explanation: small, read whole under the same deadline.
    http::response_parser<http::string_body> whole(std::move(parser));
    whole.body_limit(options.maxBodyBytes);
    auto [bodyError, bodyBytes] = co_await http::async_read(*stream, buffer, whole, useTuple);
    (void)bodyBytes;
    if (bodyError) co_return failure(what, exchangeFailure(what, bodyError, options));
    co_return toResponse(whole.release());
  }

  EngineResponse response;
  response.status = status;
  response.contentType = std::string(parser.get()[http::field::content_type]);
  stream->expires_never();
  std::array<char, 16384> chunk{};
  while (!parser.is_done()) {
    parser.get().body().data = chunk.data();
    parser.get().body().size = chunk.size();
    // read_some, not read: read returns only once the chunk is full or the
    // message ends, which holds a quiet container's last lines back forever.
    auto [ec, n] = co_await http::async_read_some(*stream, buffer, parser, useTuple);
    (void)n;
    // need_buffer only says our chunk is full: hand it on and go on reading.
    if (ec == http::error::need_buffer) ec = {};
    const std::size_t got = chunk.size() - parser.get().body().size;
    if (got > 0 && onData) onData(std::string_view(chunk.data(), got));
    if (ec) {
      if (canceller && canceller->cancelled()) co_return response;
      co_return failure(what, exchangeFailure(what, ec, options));
    }
  }
  co_return response;
}

boost::system::result<fs::path, std::string> parseDockerHost(std::string_view host) {
  // path and string convert into each other: say which side each value is.
  using boost::system::in_place_error;
  using boost::system::in_place_value;
  if (host.empty()) return {in_place_value, fs::path("/var/run/docker.sock")};
  constexpr std::string_view unixScheme = "unix://";
  std::string_view path = host;
  if (host.substr(0, unixScheme.size()) == unixScheme) {
    path = host.substr(unixScheme.size());
  } else if (host.find("://") != std::string_view::npos) {
    return {in_place_error, "docker host " + std::string(host) +
                                ": only unix:// sockets are supported (the engine must run on this node)"};
  }
  if (path.empty() || path.front() != '/')
    return {in_place_error, "docker host " + std::string(host) +
                                ": expected an absolute socket path such as unix:///var/run/docker.sock"};
  return {in_place_value, fs::path(path)};
}

std::string encodeQueryValue(std::string_view value) {
  static constexpr char hex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(value.size() * 3);
  for (unsigned char c : value) {
    const bool unreserved = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
                            c == '.' || c == '_' || c == '~';
    if (unreserved) {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 0xF];
    }
  }
  return out;
}

}  // namespace tinyfaas::docker
