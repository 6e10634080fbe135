#pragma once
// Engine requests and answers that several parts of the docker backend
// share (the images' smoke test, the leftover sweep, instances).

#include <cstddef>
#include <cstdint>
#include <string>

#include <boost/asio/awaitable.hpp>

#include "backend/docker/engine_client.hpp"

namespace tinyfaas::docker {

inline constexpr std::size_t kMaxListBytes = 16u << 20;  // container and image lists of a busy engine
inline constexpr std::size_t kMaxWaitBody = 64u << 10;   // {"StatusCode":N,"Error":...}

// Removes a container (forced, with its anonymous volumes); a failure is
// logged, since teardown goes on either way.
boost::asio::awaitable<void> removeContainer(EngineClient& client, const std::string& id);

// The `filters` JSON selecting what carries `label` ("key=value").
std::string labelFilter(const std::string& label);

// "exited with status 137 (killed by signal 9)".
std::string describeExit(std::int64_t code);

}  // namespace tinyfaas::docker
