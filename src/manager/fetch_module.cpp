// The fetch module (manager/fetch_module.hpp): libcurl's easy interface,
// one blocking transfer per call.
#include "manager/fetch_module.hpp"

#include <curl/curl.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <atomic>
#include <cstring>
#include <memory>
#include <optional>

namespace tinyfaas {

namespace {

struct Download {
  std::string body;
  std::size_t maxBytes = 0;
  bool tooLarge = false;
};

// Where a download may connect (FetchLimits::allowAddress).
struct Gate {
  const FetchLimits* limits;
  std::string refused;  // the last address refused
};

curl_socket_t openSocket(void* user, curlsocktype purpose, curl_sockaddr* address) {
  auto* gate = static_cast<Gate*>(user);
  if (purpose == CURLSOCKTYPE_IPCXN && gate->limits->allowAddress) {
    std::optional<boost::asio::ip::address> ip;
    if (address->family == AF_INET) {
      sockaddr_in in;
      std::memcpy(&in, &address->addr, sizeof in);
      ip = boost::asio::ip::address_v4(ntohl(in.sin_addr.s_addr));
    } else if (address->family == AF_INET6) {
      sockaddr_in6 in6;
      std::memcpy(&in6, &address->addr, sizeof in6);
      boost::asio::ip::address_v6::bytes_type bytes;
      std::memcpy(bytes.data(), in6.sin6_addr.s6_addr, bytes.size());
      ip = boost::asio::ip::address_v6(bytes);
    }
    if (!ip || !gate->limits->allowAddress(*ip)) {
      gate->refused = ip ? ip->to_string() : "a non-IP address";
      return CURL_SOCKET_BAD;  // curl tries the next address, then fails
    }
  }
  return socket(address->family, address->socktype | SOCK_CLOEXEC, address->protocol);
}

// Non-zero makes curl stop with CURLE_ABORTED_BY_CALLBACK.
int onProgress(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  return static_cast<const std::atomic<bool>*>(user)->load() ? 1 : 0;
}

size_t onData(char* data, size_t size, size_t count, void* user) {
  auto* download = static_cast<Download*>(user);
  const size_t n = size * count;
  if (download->body.size() + n > download->maxBytes) {
    download->tooLarge = true;
    return 0;  // makes curl stop with CURLE_WRITE_ERROR
  }
  download->body.append(data, n);
  return n;
}

boost::system::result<std::string, Failure> fetchBlocking(const std::string& url, FetchLimits limits) {
  // Once per process, before the first transfer (thread-safe since libcurl
  // 7.84; the static's initialisation is serialised anyway).
  static const CURLcode init = curl_global_init(CURL_GLOBAL_DEFAULT);
  if (init != CURLE_OK) return Failure{std::string("cannot initialise libcurl: ") + curl_easy_strerror(init)};
  std::unique_ptr<CURL, decltype(&curl_easy_cleanup)> curl(curl_easy_init(), &curl_easy_cleanup);
  if (!curl) return Failure{"cannot initialise libcurl"};
  Download download;
  download.maxBytes = limits.maxBytes;
  Gate gate{&limits, {}};
  char error[CURL_ERROR_SIZE] = {0};
  curl_easy_setopt(curl.get(), CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl.get(), CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(curl.get(), CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(curl.get(), CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt(curl.get(), CURLOPT_MAXREDIRS, 5L);
  curl_easy_setopt(curl.get(), CURLOPT_TIMEOUT, static_cast<long>(limits.timeout.count()));
  curl_easy_setopt(curl.get(), CURLOPT_CONNECTTIMEOUT, 10L);
  curl_easy_setopt(curl.get(), CURLOPT_MAXFILESIZE_LARGE, static_cast<curl_off_t>(limits.maxBytes));
  curl_easy_setopt(curl.get(), CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl.get(), CURLOPT_USERAGENT, "tinyfaas");
  curl_easy_setopt(curl.get(), CURLOPT_WRITEFUNCTION, &onData);
  curl_easy_setopt(curl.get(), CURLOPT_WRITEDATA, &download);
  curl_easy_setopt(curl.get(), CURLOPT_ERRORBUFFER, error);
  curl_easy_setopt(curl.get(), CURLOPT_OPENSOCKETFUNCTION, &openSocket);
  curl_easy_setopt(curl.get(), CURLOPT_OPENSOCKETDATA, &gate);
  if (limits.allowAddress) curl_easy_setopt(curl.get(), CURLOPT_PROXY, "");
  if (limits.cancelled) {
    curl_easy_setopt(curl.get(), CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(curl.get(), CURLOPT_XFERINFOFUNCTION, &onProgress);
    curl_easy_setopt(curl.get(), CURLOPT_XFERINFODATA, limits.cancelled.get());
  }

  const CURLcode code = curl_easy_perform(curl.get());
  // Reasons without the URL: the caller names it without its secrets.
  if (download.tooLarge || code == CURLE_FILESIZE_EXCEEDED)
    return Failure{"larger than " + std::to_string(limits.maxBytes) + " bytes"};
  if (code == CURLE_ABORTED_BY_CALLBACK) return Failure{"cancelled"};
  if (code == CURLE_OPERATION_TIMEDOUT)
    return Failure{"took longer than " + std::to_string(limits.timeout.count()) + " s"};
  if (code != CURLE_OK && !gate.refused.empty()) return Failure{"connecting to " + gate.refused + " is not allowed"};
  if (code != CURLE_OK) return Failure{error[0] ? error : curl_easy_strerror(code)};
  long status = 0;
  curl_easy_getinfo(curl.get(), CURLINFO_RESPONSE_CODE, &status);
  if (status != 200) return Failure{"server answered HTTP " + std::to_string(status)};
  return {boost::system::in_place_value, std::move(download.body)};
}

const FetchModule kModule{{TINYFAAS_VERSION}, &fetchBlocking};

}  // namespace

}  // namespace tinyfaas

TINYFAAS_MODULE_EXPORT const void* tinyfaas_module_fetch() { return &tinyfaas::kModule; }
