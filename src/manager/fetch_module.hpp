#pragma once
// The interface of the fetch module, tinyfaas-fetch.so: libcurl's
// downloads for POST /uploadURL. libcurl with its TLS, Kerberos, LDAP and
// SSH libraries stays out of the binary; manager/url_fetcher.cpp loads the
// module on the first download (util/module_loader.hpp).

#include <string>

#include <boost/system/result.hpp>

#include "core/failure.hpp"
#include "manager/fetch_limits.hpp"
#include "util/module_loader.hpp"

namespace tinyfaas {

struct FetchModule {
  ModuleHeader header;
  // Fetches an http:// or https:// URL, blocking the calling thread; see
  // fetchUrl (manager/url_fetcher.hpp). Thread-safe. Errors are one-line
  // reasons without the URL.
  boost::system::result<std::string, Failure> (*fetch)(const std::string& url, FetchLimits limits);
};

}  // namespace tinyfaas
