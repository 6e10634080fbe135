#pragma once
// Limits of one /uploadURL download, shared by manager/url_fetcher.hpp and
// the fetch module (manager/fetch_module.hpp).

#include <atomic>
#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>

#include <boost/asio/ip/address.hpp>

namespace tinyfaas {

struct FetchLimits {
  std::size_t maxBytes = 100u << 20;
  std::chrono::seconds timeout{60};
  // Asked for the address of every connection the download opens
  // (redirects included, after DNS, so a rebinding name gains nothing);
  // false refuses it. Set, it also keeps proxies out: a proxy would
  // connect on our behalf. Empty: any address.
  std::function<bool(const boost::asio::ip::address&)> allowAddress;
  // Set to true from any thread, it ends the download within about a second
  // (libcurl's progress callback), failing it as "cancelled". Empty: never.
  std::shared_ptr<const std::atomic<bool>> cancelled;
};

}  // namespace tinyfaas
