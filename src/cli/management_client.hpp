#pragma once
// Client of the daemon's management API (DESIGN.md, "Management API").

#include <chrono>
#include <functional>
#include <string>
#include <string_view>

#include <nlohmann/json_fwd.hpp>

#include "cli/http_url.hpp"
#include "cli/result.hpp"

namespace tinyfaas::cli {

// Most calls answer at once; a deploy waits for dependency installs
// (npm, pip) and for the handlers to become healthy.
inline constexpr std::chrono::milliseconds kManagementTimeout{10'000};
inline constexpr std::chrono::milliseconds kDeployTimeout{120'000};

class ManagementClient {
 public:
  // Fails on a URL the client cannot use (see parseHttpUrl). A non-empty
  // token goes with every request as `Authorization: Bearer TOKEN`.
  static Result<ManagementClient> create(std::string_view baseUrl, std::string token = {});

  // Each returns the reply body of a 2xx answer. Otherwise a one-line error:
  // "cannot reach the management API at URL: connection refused (is
  // `tinyfaas serve` running?)", or "400 Bad Request: <daemon's reason>".
  Result<std::string> get(std::string_view pathAndQuery, std::chrono::milliseconds timeout = kManagementTimeout) const;
  Result<std::string> post(std::string_view path, const nlohmann::json& body,
                           std::chrono::milliseconds timeout = kManagementTimeout) const;
  // A POST without a body, as upstream's scripts send /wipe.
  Result<std::string> post(std::string_view path, std::chrono::milliseconds timeout = kManagementTimeout) const;
  // A GET whose 2xx reply is handed to `onText` as it arrives, until the
  // daemon ends it (following logs); errors as for get().
  Result<void> follow(std::string_view pathAndQuery, std::function<void(std::string_view)> onText) const;

  // The base URL as given, for messages.
  const std::string& url() const { return display_; }

 private:
  ManagementClient(HttpUrl url, std::string display, std::string token)
      : url_(std::move(url)), display_(std::move(display)), token_(std::move(token)) {}
  Result<std::string> send(bool post, std::string_view path, std::string body, std::string_view contentType,
                           std::chrono::milliseconds timeout, std::function<void(std::string_view)> onBody = {}) const;

  HttpUrl url_;
  std::string display_;
  std::string token_;
};

}  // namespace tinyfaas::cli
