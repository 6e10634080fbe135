#include "backend/standby/handler_control.hpp"

#include <sys/socket.h>

#include <cerrno>
#include <cstring>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace tinyfaas {

namespace asio = boost::asio;
using namespace asio::experimental::awaitable_operators;

boost::system::result<ControlChannel, std::string> openControlChannel(const asio::any_io_executor& executor) {
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0)
    return std::string("socketpair: ") + std::strerror(errno);
  UniqueFd daemonEnd(fds[0]);
  UniqueFd handlerEnd(fds[1]);
  boost::system::error_code ec;
  asio::local::stream_protocol::socket socket(executor);
  socket.assign(asio::local::stream_protocol(), daemonEnd.release(), ec);
  if (ec) return "cannot use the control socket: " + ec.message();
  return ControlChannel{std::move(socket), std::move(handlerEnd)};
}

std::optional<std::string> assignmentMessage(const std::filesystem::path& folder, const std::string& program,
                                             const std::map<std::string, std::string>& env) {
  // Records are never empty: an empty one ends the message.
  std::string message = folder.string() + '\0' + (program.empty() ? "-" : program) + '\0';
  for (const auto& [name, value] : env) {
    if (name.empty() || name.find('\0') != std::string::npos || value.find('\0') != std::string::npos)
      return std::nullopt;
    message += name + '=' + value + '\0';
  }
  if (folder.empty()) return std::nullopt;
  message += '\0';
  return message;
}

boost::system::result<asio::local::stream_protocol::acceptor, std::string> listenForControl(
    const asio::any_io_executor& executor, const std::filesystem::path& path) {
  std::error_code stale;
  std::filesystem::remove(path, stale);
  boost::system::error_code ec;
  asio::local::stream_protocol::acceptor listener(executor);
  listener.open(asio::local::stream_protocol(), ec);
  if (!ec) listener.bind(asio::local::stream_protocol::endpoint(path.string()), ec);
  if (!ec) listener.listen(1, ec);
  if (ec) return "cannot listen on " + path.string() + ": " + ec.message();
  return listener;
}

asio::awaitable<std::optional<asio::local::stream_protocol::socket>> acceptControl(
    asio::local::stream_protocol::acceptor& listener, const std::filesystem::path& path,
    std::chrono::milliseconds limit) {
  asio::steady_timer timer(listener.get_executor(), limit);
  auto outcome = co_await (listener.async_accept(asio::as_tuple(asio::use_awaitable)) ||
                           timer.async_wait(asio::as_tuple(asio::use_awaitable)));
  boost::system::error_code ignored;
  listener.close(ignored);
  std::error_code gone;
  std::filesystem::remove(path, gone);
  if (outcome.index() != 0 || std::get<0>(std::get<0>(outcome))) co_return std::nullopt;
  co_return std::move(std::get<1>(std::get<0>(outcome)));
}

bool saidStandby(asio::local::stream_protocol::socket& control, bool take) {
  static constexpr std::string_view greeting = "standby\n";
  char got[greeting.size()];
  const ssize_t n = ::recv(control.native_handle(), got, sizeof got, MSG_PEEK | MSG_DONTWAIT);
  if (n != static_cast<ssize_t>(sizeof got) || std::string_view(got, sizeof got) != greeting) return false;
  return !take || ::recv(control.native_handle(), got, sizeof got, MSG_DONTWAIT) == static_cast<ssize_t>(sizeof got);
}

asio::awaitable<bool> awaitReady(asio::local::stream_protocol::socket& control, std::chrono::milliseconds limit) {
  asio::steady_timer timer(control.get_executor(), limit);
  asio::streambuf line(64);
  auto outcome = co_await (asio::async_read_until(control, line, '\n', asio::as_tuple(asio::use_awaitable)) ||
                           timer.async_wait(asio::as_tuple(asio::use_awaitable)));
  if (outcome.index() != 0) co_return false;
  if (std::get<0>(std::get<0>(outcome))) co_return false;
  const std::string text(asio::buffers_begin(line.data()),
                         asio::buffers_begin(line.data()) + std::get<1>(std::get<0>(outcome)));
  co_return text == "ready\n";
}

asio::awaitable<bool> ReadyWaits::await(asio::local::stream_protocol::socket& control,
                                        std::chrono::milliseconds limit) {
  waiting_.insert(&control);
  const bool ready = co_await awaitReady(control, limit);
  waiting_.erase(&control);
  co_return ready;
}

void ReadyWaits::cancelAll() {
  for (auto* control : waiting_) {
    boost::system::error_code ignored;
    control->cancel(ignored);
  }
}

}  // namespace tinyfaas
