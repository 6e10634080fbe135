#include "coap_peers.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "test_support.hpp"

extern char** environ;

namespace tinyfaas::test {

// ---- raw CoAP --------------------------------------------------------------------

namespace {

void appendOptionPart(std::string& out, unsigned value, std::uint8_t& nibble, std::string& extended) {
  if (value < 13) {
    nibble = static_cast<std::uint8_t>(value);
  } else if (value < 269) {
    nibble = 13;
    extended.push_back(static_cast<char>(value - 13));
  } else {
    nibble = 14;
    const unsigned v = value - 269;
    extended.push_back(static_cast<char>(v >> 8));
    extended.push_back(static_cast<char>(v & 0xFF));
  }
  (void)out;
}

}  // namespace

std::string encode(const Message& message) {
  std::string out;
  out.push_back(static_cast<char>(0x40 | (message.type << 4) | (message.token.size() & 0x0F)));
  out.push_back(static_cast<char>(message.code));
  out.push_back(static_cast<char>(message.messageId >> 8));
  out.push_back(static_cast<char>(message.messageId & 0xFF));
  out += message.token;
  std::vector<Option> options = message.options;
  std::stable_sort(options.begin(), options.end(),
                   [](const Option& a, const Option& b) { return a.number < b.number; });
  unsigned previous = 0;
  for (const Option& option : options) {
    std::uint8_t deltaNibble = 0;
    std::uint8_t lengthNibble = 0;
    std::string deltaExt;
    std::string lengthExt;
    appendOptionPart(out, option.number - previous, deltaNibble, deltaExt);
    appendOptionPart(out, static_cast<unsigned>(option.value.size()), lengthNibble, lengthExt);
    out.push_back(static_cast<char>((deltaNibble << 4) | lengthNibble));
    out += deltaExt;
    out += lengthExt;
    out += option.value;
    previous = option.number;
  }
  if (!message.payload.empty()) {
    out.push_back(static_cast<char>(0xFF));
    out += message.payload;
  }
  return out;
}

std::optional<Message> decode(std::string_view d) {
  if (d.size() < 4) return std::nullopt;
  auto byte = [&](std::size_t i) { return static_cast<std::uint8_t>(d[i]); };
  if ((byte(0) >> 6) != 1) return std::nullopt;
  Message m;
  m.type = static_cast<std::uint8_t>((byte(0) >> 4) & 0x03);
  const std::size_t tokenLength = byte(0) & 0x0F;
  m.code = byte(1);
  m.messageId = static_cast<std::uint16_t>((byte(2) << 8) | byte(3));
  if (tokenLength > 8 || d.size() < 4 + tokenLength) return std::nullopt;
  m.token = std::string(d.substr(4, tokenLength));
  std::size_t i = 4 + tokenLength;
  unsigned number = 0;
  while (i < d.size()) {
    if (byte(i) == 0xFF) {
      m.payload = std::string(d.substr(i + 1));
      break;
    }
    unsigned delta = byte(i) >> 4;
    unsigned length = byte(i) & 0x0F;
    ++i;
    auto extend = [&](unsigned& v) -> bool {
      if (v == 13) {
        if (i >= d.size()) return false;
        v = 13 + byte(i++);
      } else if (v == 14) {
        if (i + 1 >= d.size()) return false;
        v = 269 + ((byte(i) << 8) | byte(i + 1));
        i += 2;
      } else if (v == 15) {
        return false;
      }
      return true;
    };
    if (!extend(delta) || !extend(length) || i + length > d.size()) return std::nullopt;
    number += delta;
    m.options.push_back({static_cast<std::uint16_t>(number), std::string(d.substr(i, length))});
    i += length;
  }
  return m;
}

std::string codeText(std::uint8_t c) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "%u.%02u", c >> 5, c & 0x1Fu);
  return buf;
}

UdpPeer::UdpPeer(std::uint16_t serverPort) {
  fd_ = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd_ < 0) throw std::runtime_error("socket failed");
  sockaddr_in local{};
  local.sin_family = AF_INET;
  local.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(fd_, reinterpret_cast<sockaddr*>(&local), sizeof local) != 0) throw std::runtime_error("bind failed");
  sockaddr_in server{};
  server.sin_family = AF_INET;
  server.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  server.sin_port = htons(serverPort);
  if (::connect(fd_, reinterpret_cast<sockaddr*>(&server), sizeof server) != 0)
    throw std::runtime_error("connect failed");
}

UdpPeer::~UdpPeer() {
  if (fd_ >= 0) ::close(fd_);
}

void UdpPeer::send(std::string_view datagram) const {
  if (::send(fd_, datagram.data(), datagram.size(), 0) != static_cast<ssize_t>(datagram.size()))
    throw std::runtime_error(std::string("send failed: ") + std::strerror(errno));
}

std::optional<std::string> UdpPeer::receive(std::chrono::milliseconds timeout) const {
  pollfd p{fd_, POLLIN, 0};
  const int ready = ::poll(&p, 1, static_cast<int>(timeout.count()));
  if (ready <= 0) return std::nullopt;
  char buf[65536];
  const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
  if (n < 0) return std::nullopt;
  return std::string(buf, static_cast<std::size_t>(n));
}

// ---- processes -------------------------------------------------------------------

std::string coapClientPath() {
  if (const char* env = std::getenv("TINYFAAS_COAP_CLIENT"); env != nullptr && *env != '\0') return env;
#ifdef TINYFAAS_COAP_CLIENT
  if (std::filesystem::exists(TINYFAAS_COAP_CLIENT)) return TINYFAAS_COAP_CLIENT;
#endif
  for (const char* candidate : {"/usr/bin/coap-client", "/usr/bin/coap-client-notls"}) {
    if (std::filesystem::exists(candidate)) return candidate;
  }
  return {};
}

Process::Process(const std::vector<std::string>& argv, const std::string& dir) {
  static int counter = 0;
  ++counter;
  outPath_ = dir + "/proc" + std::to_string(counter) + ".out";
  errPath_ = dir + "/proc" + std::to_string(counter) + ".err";
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, outPath_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  posix_spawn_file_actions_addopen(&actions, 2, errPath_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  started_ = std::chrono::steady_clock::now();
  const int rc = posix_spawn(&pid_, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) {
    pid_ = -1;
    throw std::runtime_error("posix_spawn failed: " + std::string(std::strerror(rc)));
  }
}

Process::~Process() {
  if (pid_ > 0 && !reaped_) {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }
}

ProcessResult Process::wait(std::chrono::milliseconds deadline) {
  ProcessResult result;
  int status = 0;
  const auto until = started_ + deadline;
  while (true) {
    const pid_t r = ::waitpid(pid_, &status, WNOHANG);
    if (r == pid_) break;
    if (std::chrono::steady_clock::now() >= until) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, &status, 0);
      status = -1;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  reaped_ = true;
  result.elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started_);
  result.exitCode = (status != -1 && WIFEXITED(status)) ? WEXITSTATUS(status) : -1;
  result.out = readFile(outPath_);
  result.err = readFile(errPath_);
  return result;
}

std::string errorLine(const std::string& stderrText) {
  std::istringstream in(stderrText);
  std::string line;
  while (std::getline(in, line)) {
    if (line.size() >= 4 && line[0] >= '1' && line[0] <= '5' && line[1] == '.') return line;
  }
  return {};
}

}  // namespace tinyfaas::test
