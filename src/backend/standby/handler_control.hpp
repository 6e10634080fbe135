#pragma once
// The control socket between the daemon and a standby (the warm pool): an
// inherited descriptor, TINYFAAS_CONTROL_FD (the process backend), or a
// socket the daemon listens on in the standby's socket directory,
// TINYFAAS_CONTROL_SOCKET (containers inherit no descriptors; the daemon
// accepts one connection and removes the listener). The standby says "standby\n" once it is up and
// waiting, then reads the function it is given: NUL-ended records up to an
// empty one, the function's folder, a program to run instead ("-" for none)
// and the environment that replaces the standby's own; it says "ready\n"
// once it serves that function's calls, so no /health polling is needed.
// A handler that does not know this says nothing and is never handed out.

#include <chrono>
#include <filesystem>
#include <map>
#include <optional>
#include <set>
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

// The name of a standby container's control socket in its socket directory.
inline constexpr const char* kControlSocketName = "control.sock";

// Listens on `path` for a standby container's handler; the caller makes it
// reachable for the handler's user.
boost::system::result<boost::asio::local::stream_protocol::acceptor, std::string> listenForControl(
    const boost::asio::any_io_executor& executor, const std::filesystem::path& path);
// The handler's connection, when it comes within `limit`; the listener is
// closed and its file removed either way, so nothing else can connect.
boost::asio::awaitable<std::optional<boost::asio::local::stream_protocol::socket>> acceptControl(
    boost::asio::local::stream_protocol::acceptor& listener, const std::filesystem::path& path,
    std::chrono::milliseconds limit);

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

// The handovers waiting for their handler's "ready", so that a shutdown
// cuts them short.
class ReadyWaits {
 public:
  boost::asio::awaitable<bool> await(boost::asio::local::stream_protocol::socket& control,
                                     std::chrono::milliseconds limit);
  void cancelAll();

 private:
  std::set<boost::asio::local::stream_protocol::socket*> waiting_;
};

}  // namespace tinyfaas
