#pragma once
// The control socket between the daemon and a standby (the warm pool), its
// TINYFAAS_CONTROL_FD: the standby says "standby\n" once it is up and
// waiting, then reads the function it is given: NUL-ended records up to an
// empty one, the function's folder, a program to run instead ("-" for none)
// and the environment that replaces the standby's own; it says "ready\n"
// once it serves that function's calls, so no /health polling is needed.
// A handler that does not know this says nothing and is never handed out.

#include <chrono>
#include <filesystem>
#include <map>
#include <optional>
#include <string>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/system/result.hpp>

#include "util/unique_fd.hpp"

namespace tinyfaas {

struct ControlChannel {
  boost::asio::local::stream_protocol::socket daemonEnd;
  UniqueFd handlerEnd;  // inherited by the handler (blocking, as it reads it so)
};
boost::system::result<ControlChannel, std::string> openControlChannel(const boost::asio::any_io_executor& executor);

// `program` "" is sent as "-". Nothing for an empty folder or a variable
// with a NUL byte, which would end its record early.
std::optional<std::string> assignmentMessage(const std::filesystem::path& folder, const std::string& program,
                                             const std::map<std::string, std::string>& env);

// Whether the standby has said "standby"; does not wait. take: the words
// are taken from the socket, which then holds what it says next.
bool saidStandby(boost::asio::local::stream_protocol::socket& control, bool take);

// True once the handler said "ready"; false when it closed its end (it
// ended, failed to load, or exec'd a program that does not say it), when
// `limit` passed, or when the socket was closed here.
boost::asio::awaitable<bool> awaitReady(boost::asio::local::stream_protocol::socket& control,
                                        std::chrono::milliseconds limit);

}  // namespace tinyfaas
