#pragma once
// Limits of one /uploadURL download, shared by manager/url_fetcher.hpp and
// the fetch module (manager/fetch_module.hpp).

#include <chrono>
#include <cstddef>

namespace tinyfaas {

struct FetchLimits {
  std::size_t maxBytes = 100u << 20;
  std::chrono::seconds timeout{60};
};

}  // namespace tinyfaas
