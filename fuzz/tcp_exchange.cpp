#include "tcp_exchange.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>

namespace tinyfaas::fuzz {

namespace {

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "tcp_exchange: %s (errno %d)\n", what, errno);
  std::abort();
}

}  // namespace

std::string exchangeOverTcp(boost::asio::io_context& io, std::uint16_t port, std::string_view bytes,
                            std::chrono::milliseconds patience) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) fail("socket");
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 && errno != EINPROGRESS)
    fail("connect");

  std::string reply;
  std::size_t sent = 0;
  bool halfClosed = false;
  auto deadline = std::chrono::steady_clock::now() + patience;
  for (;;) {
    bool progress = false;
    if (sent < bytes.size()) {
      const ssize_t n = ::send(fd, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
      if (n > 0) {
        sent += static_cast<std::size_t>(n);
        progress = true;
      } else if (n < 0 && errno != EAGAIN && errno != ENOTCONN) {
        sent = bytes.size();  // the server closed early: the rest is moot
      }
    }
    if (sent == bytes.size() && !halfClosed) {
      ::shutdown(fd, SHUT_WR);
      halfClosed = true;
    }
    char buffer[16384];
    const ssize_t n = ::recv(fd, buffer, sizeof buffer, 0);
    if (n > 0) {
      reply.append(buffer, static_cast<std::size_t>(n));
      progress = true;
    } else if (n == 0 || (n < 0 && errno != EAGAIN && errno != ENOTCONN)) {
      break;  // closed (or reset) by the server: the exchange is over
    }
    if (io.stopped()) io.restart();
    if (io.poll() > 0) progress = true;
    if (progress) {
      deadline = std::chrono::steady_clock::now() + patience;
    } else {
      if (std::chrono::steady_clock::now() > deadline) fail("the server neither answered nor closed");
      io.run_one_for(std::chrono::milliseconds(1));
    }
  }
  ::close(fd);
  // Let the server finish its side of the connection before the next input.
  if (io.stopped()) io.restart();
  io.poll();
  return reply;
}

}  // namespace tinyfaas::fuzz
