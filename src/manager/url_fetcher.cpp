#include "manager/url_fetcher.hpp"

#include "manager/fetch_module.hpp"
#include "util/run_on.hpp"

namespace tinyfaas {

boost::asio::awaitable<boost::system::result<std::string, Failure>> fetchUrl(boost::asio::any_io_executor worker,
                                                                             std::string url, FetchLimits limits) {
  // Loaded on the worker too: the first load maps libcurl and its libraries
  // from disk, which must not hold up the caller's loop.
  auto fetch = [&]() -> boost::system::result<std::string, Failure> {
    auto api = loadModuleApi<FetchModule>("fetch");
    if (!api) return Failure{"the download module cannot be loaded: " + api.error()};
    return (*api)->fetch(url, limits);
  };
  co_return co_await runOn(worker, fetch);
}

}  // namespace tinyfaas
