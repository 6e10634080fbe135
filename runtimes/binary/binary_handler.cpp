// tinyFaaS function handler for the `binary` runtime.
//
// Serves the handler contract on the Unix socket named by TINYFAAS_SOCKET:
//   GET  /health -> 200 "OK"
//   POST /fn     -> runs ./fn.sh once per call, request body on its stdin,
//                   its stdout as the response body.
// Each call's fn.sh runs in a process group of its own, and the whole group
// is killed when fn.sh exits (what it left running), when the call's time
// is up (the proxy's X-Tinyfaas-Timeout-Ms header: milliseconds left), or
// when the caller closes the connection: a call that nobody waits for any
// more costs nothing, so the proxy's concurrency limit bounds real work.
// A connection that opens with the preface "\0TF2" speaks the daemon's
// length-prefixed framing instead of HTTP (src/proxy/handler_frame.hpp).
// One thread drives everything: the work happens in the fn.sh processes, so
// the handler only shuffles bytes, and a single thread keeps posix_spawn free
// of the usual fork-vs-threads hazards.

#include <boost/asio.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <tuple>
#include <unordered_map>
#include <utility>
#include <vector>

extern char** environ;

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using local = asio::local::stream_protocol;
using namespace asio::experimental::awaitable_operators;
using std::chrono::seconds;

constexpr std::size_t kBodyLimit = 16 * 1024 * 1024;
constexpr std::size_t kOutputLimit = 16 * 1024 * 1024;
constexpr std::size_t kHeaderLimit = 64 * 1024;
constexpr std::size_t kReasonLimit = 512;
// Matches the Node.js handler: the proxy keeps idle connections for reuse, so
// the limit only has to reap connections whose peer vanished.
constexpr auto kIdleTimeout = seconds(300);

using Stream = beast::basic_stream<local, asio::any_io_executor>;
using Request = http::request<http::string_body>;
using Response = http::response<http::string_body>;

void log_line(std::string_view msg) {
  std::string line = "tinyfaas binary handler: ";
  line.append(msg);
  line.push_back('\n');
  // One write per line so concurrent output does not interleave mid-line.
  [[maybe_unused]] auto n = ::write(STDERR_FILENO, line.data(), line.size());
}

void write_fully(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return;
    }
    data.remove_prefix(static_cast<std::size_t>(n));
  }
}

void set_cloexec(int fd) { ::fcntl(fd, F_SETFD, ::fcntl(fd, F_GETFD) | FD_CLOEXEC); }

// fn.sh may print "\r\n" or trailing blanks; the reason must be one clean line.
std::string clean_line(std::string_view s) {
  while (!s.empty() && (s.back() == '\r' || s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  if (s.size() > kReasonLimit) s = s.substr(0, kReasonLimit);
  std::string out(s);
  for (char& c : out) {
    if (c == '\r' || c == '\n') c = ' ';
  }
  return out;
}

// Every fn.sh is our child; exits are collected centrally because SIGCHLD is
// process-wide. pidfd_open would avoid the shared table, but it needs Linux
// 5.3 and is blocked by older container seccomp profiles, while SIGCHLD works
// everywhere a handler may run.
//
// Each fn.sh leads a process group (pgid = its pid). The group is killed
// only while its leader is unreaped: a zombie keeps its pid, so the pgid
// cannot have been handed to another call's fn.sh meanwhile.
class Reaper {
 public:
  struct Exit {
    explicit Exit(const asio::any_io_executor& ex) : done(ex, asio::steady_timer::time_point::max()) {}
    asio::steady_timer done;
    std::optional<int> status;
  };

  explicit Reaper(asio::io_context& io) : signals_(io, SIGCHLD) {}

  void start() { arm(); }

  // Must be called right after the spawn, before the next suspension point:
  // the SIGCHLD completion only runs from the event loop, so the exit cannot
  // be collected before the pid is in the table.
  std::shared_ptr<Exit> watch(pid_t pid, const asio::any_io_executor& ex) {
    auto e = std::make_shared<Exit>(ex);
    children_.emplace(pid, e);
    return e;
  }

  // Signals the process group of a call whose fn.sh is not reaped yet.
  static void signal_group(pid_t pid, const Exit& exit, int sig) {
    if (!exit.status) ::kill(-pid, sig);
  }

  void signal_all(int sig) {
    for (const auto& [pid, e] : children_) ::kill(-pid, sig);
  }

 private:
  void arm() {
    signals_.async_wait([this](const boost::system::error_code& ec, int) {
      if (ec) return;
      collect();
      arm();
    });
  }

  void collect() {
    // Signals coalesce: one SIGCHLD may stand for several exits.
    for (auto it = children_.begin(); it != children_.end();) {
      const pid_t pid = it->first;
      siginfo_t info{};
      if (::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOHANG | WNOWAIT) != 0 || info.si_pid != pid) {
        ++it;
        continue;
      }
      // What fn.sh left behind in its group ends with it; the leader is still
      // a zombie here, so the group id is still this call's.
      ::kill(-pid, SIGKILL);
      int status = 0;
      ::waitpid(pid, &status, 0);
      it->second->status = status;
      it->second->done.cancel();
      it = children_.erase(it);
    }
  }

  asio::signal_set signals_;
  std::unordered_map<pid_t, std::shared_ptr<Exit>> children_;
};

Reaper* g_reaper = nullptr;

struct Pipe {
  int read = -1;
  int write = -1;
  bool open() {
    std::array<int, 2> fds{};
    // O_CLOEXEC keeps every other concurrent call's pipes out of this child.
    if (::pipe2(fds.data(), O_CLOEXEC) != 0) return false;
    read = fds[0];
    write = fds[1];
    return true;
  }
  void close_all() {
    if (read >= 0) ::close(read);
    if (write >= 0) ::close(write);
    read = write = -1;
  }
};

struct FnResult {
  bool ok = false;
  std::string body;  // output on success, one-line reason on failure
};

class SpawnAttrs {
 public:
  SpawnAttrs() {
    ::posix_spawn_file_actions_init(&actions_);
    ::posix_spawnattr_init(&attr_);
  }
  ~SpawnAttrs() {
    ::posix_spawn_file_actions_destroy(&actions_);
    ::posix_spawnattr_destroy(&attr_);
  }
  SpawnAttrs(const SpawnAttrs&) = delete;
  SpawnAttrs& operator=(const SpawnAttrs&) = delete;

  void setup(int in, int out, int err) {
    ::posix_spawn_file_actions_adddup2(&actions_, in, STDIN_FILENO);
    ::posix_spawn_file_actions_adddup2(&actions_, out, STDOUT_FILENO);
    ::posix_spawn_file_actions_adddup2(&actions_, err, STDERR_FILENO);
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 34))
    // Asio opens some descriptors without O_CLOEXEC; none belong in fn.sh.
    ::posix_spawn_file_actions_addclosefrom_np(&actions_, 3);
#endif
    // The handler ignores SIGPIPE (it writes to pipes of exiting children);
    // fn.sh must get the default so `producer | head` behaves as in a shell.
    sigset_t def;
    sigemptyset(&def);
    sigaddset(&def, SIGPIPE);
    sigset_t mask;
    sigemptyset(&mask);
    ::posix_spawnattr_setsigdefault(&attr_, &def);
    ::posix_spawnattr_setsigmask(&attr_, &mask);
    // A process group per call (pgid = fn.sh's pid): everything the call
    // starts can be killed at once when the call ends.
    ::posix_spawnattr_setpgroup(&attr_, 0);
    ::posix_spawnattr_setflags(&attr_, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETPGROUP);
  }

  int spawn(pid_t& pid, const char* path, char* const argv[]) {
    return ::posix_spawn(&pid, path, &actions_, &attr_, argv, environ);
  }

 private:
  posix_spawn_file_actions_t actions_;
  posix_spawnattr_t attr_;
};

// Starts fn.sh; returns 0 and the pid or an errno value.
int spawn_fn(pid_t& pid, int in, int out, int err) {
  SpawnAttrs attrs;
  attrs.setup(in, out, err);

  static char arg_direct[] = "./fn.sh";
  static char arg_sh[] = "/bin/sh";
  static char arg_script[] = "fn.sh";
  char* direct[] = {arg_direct, nullptr};
  char* via_sh[] = {arg_sh, arg_script, nullptr};

  if (::access("fn.sh", X_OK) == 0) {
    int rc = attrs.spawn(pid, direct[0], direct);
    // Executable bit set but not runnable as is: no shebang line (ENOEXEC) or
    // a noexec mount of the code directory (EACCES). A shell still reads it.
    if (rc != ENOEXEC && rc != EACCES) return rc;
  }
  return attrs.spawn(pid, via_sh[0], via_sh);
}

asio::awaitable<void> feed_stdin(asio::posix::stream_descriptor in, const std::string& input) {
  if (!input.empty()) {
    // EPIPE just means fn.sh did not want (all of) its input.
    co_await asio::async_write(in, asio::buffer(input), asio::as_tuple(asio::use_awaitable));
  }
  boost::system::error_code ignored;
  in.close(ignored);
}

struct Output {
  std::string data;
  bool overflow = false;
};

asio::awaitable<Output> collect_stdout(asio::posix::stream_descriptor out, pid_t pid,
                                       std::shared_ptr<Reaper::Exit> exit) {
  Output o;
  std::array<char, 64 * 1024> chunk{};
  for (;;) {
    auto [ec, n] = co_await out.async_read_some(asio::buffer(chunk), asio::as_tuple(asio::use_awaitable));
    if (ec) break;
    if (o.data.size() + n > kOutputLimit) {
      o.overflow = true;
      // Nobody will read the rest; stop the producer instead of letting it
      // block on a full pipe forever. Once reaped, the pid may belong to
      // someone else.
      Reaper::signal_group(pid, *exit, SIGKILL);
      break;
    }
    o.data.append(chunk.data(), n);
  }
  co_return o;
}

// Passes fn.sh's stderr on as whole lines, so lines of concurrent calls do
// not interleave mid-line in the daemon's log, and keeps the last line as
// the most likely explanation of a failure.
asio::awaitable<std::string> relay_stderr(asio::posix::stream_descriptor err) {
  std::string pending;
  std::string last;
  std::array<char, 16 * 1024> chunk{};
  auto remember = [&last](std::string_view line) {
    auto cleaned = clean_line(line);
    if (!cleaned.empty()) last = std::move(cleaned);
  };
  for (;;) {
    auto [ec, n] = co_await err.async_read_some(asio::buffer(chunk), asio::as_tuple(asio::use_awaitable));
    if (ec) break;
    pending.append(chunk.data(), n);
    auto nl = pending.rfind('\n');
    if (nl == std::string::npos) {
      // A line longer than this is not going to be a useful log line anyway.
      if (pending.size() < 64 * 1024) continue;
      pending.push_back('\n');
      nl = pending.size() - 1;
    }
    write_fully(STDERR_FILENO, std::string_view(pending).substr(0, nl + 1));
    std::string_view complete(pending.data(), nl);
    auto prev = complete.rfind('\n');
    remember(prev == std::string_view::npos ? complete : complete.substr(prev + 1));
    pending.erase(0, nl + 1);
  }
  if (!pending.empty()) {
    remember(pending);
    pending.push_back('\n');
    write_fully(STDERR_FILENO, pending);
  }
  co_return last;
}

// When a call ends before its fn.sh does.
struct CallLimits {
  std::optional<std::chrono::steady_clock::time_point> deadline;  // from X-Tinyfaas-Timeout-Ms
  int connection = -1;                                            // the caller's socket: its end abandons the call
};

// Kills a call's process group when its deadline passes or its caller hangs
// up. Callbacks only, holding shared state: they may run after run_fn has
// returned, and then find the leader reaped and do nothing.
class CallGuard {
 public:
  CallGuard(const asio::any_io_executor& ex, pid_t pid, std::shared_ptr<Reaper::Exit> exit, const CallLimits& limits)
      : state_(std::make_shared<State>(ex, pid, std::move(exit))), connection_(limits.connection) {
    if (limits.deadline) {
      state_->timer.expires_at(*limits.deadline);
      state_->timer.async_wait([state = state_](const boost::system::error_code& ec) {
        if (ec || state->exit->status) return;
        state->timed_out = true;
        Reaper::signal_group(state->pid, *state->exit, SIGKILL);
      });
    }
    if (connection_ >= 0) watch_connection(state_, connection_);
  }
  ~CallGuard() {
    state_->timer.cancel();
    state_->hangup.cancel();
  }
  CallGuard(const CallGuard&) = delete;
  CallGuard& operator=(const CallGuard&) = delete;

  bool timed_out() const { return state_->timed_out; }

 private:
  struct State {
    State(const asio::any_io_executor& ex, pid_t p, std::shared_ptr<Reaper::Exit> e)
        : pid(p), exit(std::move(e)), timer(ex), hangup(ex) {}
    pid_t pid;
    std::shared_ptr<Reaper::Exit> exit;
    asio::steady_timer timer;
    // Wakes when the connection turns readable. A duplicate of the caller's
    // descriptor, so cancelling it leaves the connection's own reads alone.
    asio::posix::stream_descriptor hangup;
    bool timed_out = false;
  };

  // The caller sends nothing while it waits for the answer, so the
  // connection turning readable means it was closed (or reset); bytes
  // instead (a pipelined request) end the watch.
  static void watch_connection(const std::shared_ptr<State>& state, int connection) {
    const int fd = ::fcntl(connection, F_DUPFD_CLOEXEC, 3);
    if (fd < 0) return;
    boost::system::error_code ec;
    state->hangup.assign(fd, ec);
    if (ec) {
      ::close(fd);
      return;
    }
    arm(state);
  }

  static void arm(const std::shared_ptr<State>& state) {
    state->hangup.async_wait(asio::posix::descriptor_base::wait_read, [state](const boost::system::error_code& ec) {
      if (ec || state->exit->status) return;
      char byte = 0;
      const ssize_t n = ::recv(state->hangup.native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
      if (n > 0) return;
      if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
        arm(state);
        return;
      }
      Reaper::signal_group(state->pid, *state->exit, SIGKILL);
    });
  }

  std::shared_ptr<State> state_;
  int connection_;
};

asio::awaitable<FnResult> run_fn(std::string input, CallLimits limits) {
  auto ex = co_await asio::this_coro::executor;

  Pipe in, out, err;
  if (!in.open() || !out.open() || !err.open()) {
    int e = errno;
    in.close_all();
    out.close_all();
    err.close_all();
    co_return FnResult{false, std::string("cannot create pipes for fn.sh: ") + std::strerror(e)};
  }

  struct stat st {};
  if (::stat("fn.sh", &st) != 0) {
    in.close_all();
    out.close_all();
    err.close_all();
    co_return FnResult{false, "fn.sh not found in the function's directory"};
  }

  pid_t pid = 0;
  int rc = spawn_fn(pid, in.read, out.write, err.write);
  ::close(in.read);
  ::close(out.write);
  ::close(err.write);
  if (rc != 0) {
    ::close(in.write);
    ::close(out.read);
    ::close(err.read);
    co_return FnResult{false, std::string("cannot start fn.sh: ") + std::strerror(rc)};
  }
  auto exit = g_reaper->watch(pid, ex);
  CallGuard guard(ex, pid, exit, limits);

  // All three at once: a child that writes more than a pipe buffer before
  // reading all of its input would otherwise deadlock against us.
  auto [output, last_err] = co_await (feed_stdin(asio::posix::stream_descriptor(ex, in.write), input) &&
                                      collect_stdout(asio::posix::stream_descriptor(ex, out.read), pid, exit) &&
                                      relay_stderr(asio::posix::stream_descriptor(ex, err.read)));

  if (!exit->status) {
    co_await exit->done.async_wait(asio::as_tuple(asio::use_awaitable));
  }
  int status = exit->status.value_or(-1);

  if (guard.timed_out()) co_return FnResult{false, "fn.sh was stopped: the call's timeout passed"};
  if (output.overflow) {
    co_return FnResult{false, "fn.sh output exceeds " + std::to_string(kOutputLimit) + " bytes"};
  }
  if (status >= 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0) {
    co_return FnResult{true, std::move(output.data)};
  }

  std::string reason;
  if (status >= 0 && WIFEXITED(status)) {
    reason = "fn.sh exited with status " + std::to_string(WEXITSTATUS(status));
  } else if (status >= 0 && WIFSIGNALED(status)) {
    reason = "fn.sh was killed by signal " + std::to_string(WTERMSIG(status));
  } else {
    reason = "fn.sh ended with unknown status";
  }
  if (!last_err.empty()) reason += ": " + last_err;
  co_return FnResult{false, std::move(reason)};
}

Response make_response(http::status status, unsigned version, std::string body, bool text) {
  Response res{status, version};
  if (text) res.set(http::field::content_type, "text/plain; charset=utf-8");
  res.body() = std::move(body);
  return res;
}

std::string_view path_of(std::string_view target) {
  auto q = target.find('?');
  return q == std::string_view::npos ? target : target.substr(0, q);
}

constexpr std::string_view kTimeLeftHeader = "X-Tinyfaas-Timeout-Ms";

// X-Tinyfaas-Timeout-Ms: what is left of the call's time when the proxy
// sent it. Absent or malformed: no deadline (the connection's end still
// stops the call).
std::optional<std::chrono::steady_clock::time_point> deadline_of(std::string_view value) {
  if (value.empty()) return std::nullopt;
  std::uint64_t ms = 0;
  const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), ms);
  if (ec != std::errc{} || end != value.data() + value.size()) return std::nullopt;
  // Beyond any call timeout the daemon allows (an hour); keeps the sum in range.
  ms = std::min<std::uint64_t>(ms, 24ull * 3600 * 1000);
  return std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
}

asio::awaitable<Response> handle(Request& req, int connection) {
  auto path = path_of(req.target());
  if (path == "/fn" && req.method() == http::verb::post) {
    FnResult r = co_await run_fn(std::move(req.body()), CallLimits{deadline_of(req[kTimeLeftHeader]), connection});
    if (r.ok) co_return make_response(http::status::ok, req.version(), std::move(r.body), false);
    log_line(r.body);
    co_return make_response(http::status::internal_server_error, req.version(), std::move(r.body), true);
  }
  if (path == "/health" && req.method() == http::verb::get) {
    co_return make_response(http::status::ok, req.version(), "OK", true);
  }
  // A body after a HEAD response would be read as the next response.
  co_return make_response(http::status::not_found, req.version(), req.method() == http::verb::head ? "" : "not found",
                          true);
}

// The daemon's framing (src/proxy/handler_frame.hpp), which it speaks to
// this handler instead of HTTP: the preface once, then per call u32 header
// block bytes, u32 body bytes, header block (u16 name bytes, name, u32 value
// bytes, value per header), body; the answer u32 status, u32 header block
// bytes, u32 body bytes, header block, body. Big-endian.
constexpr std::string_view kPreface{"\0TF2", 4};
// The one header a framed answer carries: a failure's reason is text.
constexpr std::pair<std::string_view, std::string_view> kTextType{"Content-Type", "text/plain; charset=utf-8"};

std::uint32_t big_endian(const char* at, std::size_t bytes) {
  std::uint32_t value = 0;
  for (std::size_t i = 0; i < bytes; ++i) value = (value << 8) | static_cast<unsigned char>(at[i]);
  return value;
}

void append_big_endian(std::string& out, std::uint32_t value, std::size_t bytes) {
  for (std::size_t i = bytes; i-- > 0;) out.push_back(static_cast<char>((value >> (8 * i)) & 0xFF));
}

std::string_view contents(const beast::flat_buffer& buffer) {
  return {static_cast<const char*>(buffer.data().data()), buffer.size()};
}

asio::awaitable<bool> read_at_least(Stream& stream, beast::flat_buffer& buffer, std::size_t bytes) {
  while (buffer.size() < bytes) {
    auto [ec, n] = co_await stream.async_read_some(buffer.prepare(std::max<std::size_t>(bytes - buffer.size(), 4096)),
                                                   asio::as_tuple(asio::use_awaitable));
    if (ec) co_return false;
    buffer.commit(n);
  }
  co_return true;
}

// The call's X-Tinyfaas-Timeout-Ms from a request's header block; false
// when the block's lengths do not add up.
bool frame_time_left(std::string_view block, std::string_view& time_left) {
  for (std::size_t at = 0; at < block.size();) {
    if (block.size() - at < 2) return false;
    const std::size_t name_bytes = big_endian(block.data() + at, 2);
    if (block.size() - at - 2 < name_bytes + 4) return false;
    const std::string_view name = block.substr(at + 2, name_bytes);
    at += 2 + name_bytes;
    const std::size_t value_bytes = big_endian(block.data() + at, 4);
    if (block.size() - at - 4 < value_bytes) return false;
    if (beast::iequals(name, kTimeLeftHeader)) time_left = block.substr(at + 4, value_bytes);
    at += 4 + value_bytes;
  }
  return true;
}

// One call at a time, as the daemon sends them; the connection closes when
// a frame cannot be read or is out of bounds.
asio::awaitable<void> serve_frames(Stream& stream, beast::flat_buffer& buffer) {
  for (;;) {
    stream.expires_after(kIdleTimeout);
    if (!co_await read_at_least(stream, buffer, 8)) co_return;
    const std::size_t block_bytes = big_endian(contents(buffer).data(), 4);
    const std::size_t body_bytes = big_endian(contents(buffer).data() + 4, 4);
    if (block_bytes > kHeaderLimit || body_bytes > kBodyLimit) {
      log_line("a framed call exceeds the header or body limit; closing its connection");
      co_return;
    }
    if (!co_await read_at_least(stream, buffer, 8 + block_bytes + body_bytes)) co_return;
    std::string_view time_left;
    if (!frame_time_left(contents(buffer).substr(8, block_bytes), time_left)) {
      log_line("a framed call's header block does not add up; closing its connection");
      co_return;
    }
    const auto deadline = deadline_of(time_left);
    std::string input(contents(buffer).substr(8 + block_bytes, body_bytes));
    buffer.consume(8 + block_bytes + body_bytes);

    stream.expires_never();
    FnResult r = co_await run_fn(std::move(input), CallLimits{deadline, stream.socket().native_handle()});
    std::string block;
    if (!r.ok) {
      log_line(r.body);
      append_big_endian(block, kTextType.first.size(), 2);
      block += kTextType.first;
      append_big_endian(block, kTextType.second.size(), 4);
      block += kTextType.second;
    }
    std::string frame;
    frame.reserve(12 + block.size() + r.body.size());
    append_big_endian(frame, r.ok ? 200 : 500, 4);
    append_big_endian(frame, static_cast<std::uint32_t>(block.size()), 4);
    append_big_endian(frame, static_cast<std::uint32_t>(r.body.size()), 4);
    frame += block;
    frame += r.body;
    stream.expires_after(kIdleTimeout);
    auto [ec, n] = co_await asio::async_write(stream, asio::buffer(frame), asio::as_tuple(asio::use_awaitable));
    if (ec) co_return;
  }
}

asio::awaitable<void> serve(local::socket socket) {
  Stream stream(std::move(socket));
  beast::flat_buffer buffer;

  // A connection that opens with the preface speaks frames, any other HTTP.
  // (Each co_await on a line of its own: GCC 12 miscompiles one inside &&.)
  stream.expires_after(kIdleTimeout);
  const bool opened = co_await read_at_least(stream, buffer, 1);
  if (opened && contents(buffer).front() == kPreface.front()) {
    const bool whole = co_await read_at_least(stream, buffer, kPreface.size());
    if (whole && contents(buffer).substr(0, kPreface.size()) == kPreface) {
      buffer.consume(kPreface.size());
      co_await serve_frames(stream, buffer);
    }
    boost::system::error_code ignored;
    stream.socket().shutdown(local::socket::shutdown_send, ignored);
    co_return;
  }

  for (;;) {
    http::request_parser<http::string_body> parser;
    parser.body_limit(kBodyLimit);
    parser.header_limit(kHeaderLimit);

    stream.expires_after(kIdleTimeout);
    auto [ec, n] = co_await http::async_read_header(stream, buffer, parser, asio::as_tuple(asio::use_awaitable));
    if (!ec && beast::iequals(parser.get()[http::field::expect], "100-continue")) {
      // Clients such as curl hold back large bodies until they see this,
      // or until their own timeout, which would add a second to the call.
      http::response<http::empty_body> cont{http::status::continue_, parser.get().version()};
      std::tie(ec, n) = co_await http::async_write(stream, cont, asio::as_tuple(asio::use_awaitable));
    }
    if (!ec && !parser.is_done()) {
      std::tie(ec, n) = co_await http::async_read(stream, buffer, parser, asio::as_tuple(asio::use_awaitable));
    }
    if (ec) {
      if (ec == http::error::body_limit || ec == http::error::header_limit) {
        auto res = make_response(ec == http::error::body_limit ? http::status::payload_too_large
                                                               : http::status::request_header_fields_too_large,
                                 11, ec.message(), true);
        res.keep_alive(false);
        res.prepare_payload();
        stream.expires_after(kIdleTimeout);
        co_await http::async_write(stream, res, asio::as_tuple(asio::use_awaitable));
      }
      break;
    }

    Request req = parser.release();
    bool keep_alive = req.keep_alive();
    stream.expires_never();
    Response res = co_await handle(req, stream.socket().native_handle());
    res.keep_alive(keep_alive);
    res.prepare_payload();

    stream.expires_after(kIdleTimeout);
    auto [wec, wn] = co_await http::async_write(stream, res, asio::as_tuple(asio::use_awaitable));
    if (wec || !keep_alive) break;
  }

  boost::system::error_code ignored;
  stream.socket().shutdown(local::socket::shutdown_send, ignored);
}

asio::awaitable<void> accept_loop(local::acceptor& acceptor) {
  auto ex = co_await asio::this_coro::executor;
  asio::steady_timer backoff(ex);
  for (;;) {
    auto [ec, socket] = co_await acceptor.async_accept(asio::as_tuple(asio::use_awaitable));
    if (ec == asio::error::operation_aborted) co_return;
    if (ec) {
      // Typically EMFILE: pause instead of spinning on the same error.
      log_line("accept failed: " + ec.message());
      backoff.expires_after(std::chrono::milliseconds(100));
      co_await backoff.async_wait(asio::as_tuple(asio::use_awaitable));
      continue;
    }
    set_cloexec(socket.native_handle());
    asio::co_spawn(ex, serve(std::move(socket)), asio::detached);
  }
}

// With stdin/stdout/stderr closed, pipe2 could hand out descriptor 0..2 and
// the dup2 onto the same number in the child would then be a no-op that
// keeps O_CLOEXEC set.
void ensure_std_fds() {
  for (int fd = 0; fd <= 2; ++fd) {
    if (::fcntl(fd, F_GETFD) < 0 && errno == EBADF) {
      int nul = ::open("/dev/null", O_RDWR);
      if (nul >= 0 && nul != fd) {
        ::dup2(nul, fd);
        ::close(nul);
      }
    }
  }
}

// A standby's control socket (take_assignment): "ready\n" goes there once
// calls are served, which spares the daemon polling /health. Inherited (the
// process backend) or connected to (a container inherits no descriptors).
int control_fd() {
  const char* env = std::getenv("TINYFAAS_CONTROL_FD");
  if (env != nullptr && *env != '\0') return std::atoi(env);
  const char* path = std::getenv("TINYFAAS_CONTROL_SOCKET");
  if (path == nullptr || *path == '\0') return -1;
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0 || std::strlen(path) >= sizeof address.sun_path) std::exit(1);
  std::memcpy(address.sun_path, path, std::strlen(path) + 1);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
    log_line(std::string("standby: cannot connect to its control socket: ") + std::strerror(errno));
    std::exit(1);
  }
  return fd;
}

void signal_ready(int fd) {
  if (fd < 0) return;
  static constexpr std::string_view ready = "ready\n";
  while (::write(fd, ready.data(), ready.size()) < 0 && errno == EINTR) {
  }
  ::close(fd);
}

// A standby (the process backend's warm pool) starts with no function and
// the platform's defaults only, says "standby\n" once it is up, and is
// handed one function, once, as NUL-ended records up to an empty one: the
// function's folder, a program to run instead ("-" to serve fn.sh here; a
// go function's handler), then the environment that replaces this one. No
// tenant's code ran here before.
// Returns false when the daemon closed the socket instead.
bool take_assignment(int fd) {
  static constexpr std::string_view waiting = "standby\n";
  while (::write(fd, waiting.data(), waiting.size()) < 0 && errno == EINTR) {
  }
  std::string got;
  std::array<char, 65536> chunk{};
  while (got.find(std::string_view("\0\0", 2)) == std::string::npos) {
    const ssize_t n = ::read(fd, chunk.data(), chunk.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    got.append(chunk.data(), static_cast<std::size_t>(n));
  }
  got.resize(got.find(std::string_view("\0\0", 2)) + 1);
  // putenv keeps pointers into the entries: they live as long as the process.
  static std::vector<std::string> records;
  for (std::size_t at = 0; at < got.size();) {
    const std::size_t end = got.find('\0', at);
    records.emplace_back(got, at, end - at);
    at = end + 1;
  }
  if (records.size() < 2 || ::chdir(records[0].c_str()) != 0) {
    log_line("standby: cannot enter the function's folder");
    std::exit(1);
  }
  ::clearenv();
  for (std::size_t i = 2; i < records.size(); ++i) ::putenv(records[i].data());
  if (records[1] != "-") {
    // A go handler: it signals nothing; the daemon sees the socket close
    // at exec and probes /health instead.
    set_cloexec(fd);
    const std::string socket = std::getenv("TINYFAAS_SOCKET") != nullptr ? std::getenv("TINYFAAS_SOCKET") : "";
    char* argv[] = {records[1].data(), const_cast<char*>(socket.c_str()), nullptr};
    ::execv(argv[0], argv);
    log_line("standby: cannot run " + records[1] + ": " + std::strerror(errno));
    std::exit(1);
  }
  return true;
}

}  // namespace

int main() {
  const int control = control_fd();
  if (control >= 0) {
    set_cloexec(control);  // fn.sh has no business with it
    const char* standby = std::getenv("TINYFAAS_STANDBY");
    if (standby != nullptr && std::string_view(standby) == "1" && !take_assignment(control)) return 0;
  }
  const char* socket_env = std::getenv("TINYFAAS_SOCKET");
  // The process backend binds and listens itself and hands the socket over
  // as a descriptor, so the sandbox needs no path on the host; custom
  // setups and the docker backend bind TINYFAAS_SOCKET.
  const char* listen_fd_env = std::getenv("TINYFAAS_LISTEN_FD");
  const int listen_fd = listen_fd_env != nullptr && *listen_fd_env != '\0' ? std::atoi(listen_fd_env) : -1;
  if ((socket_env == nullptr || *socket_env == '\0') && listen_fd < 0) {
    log_line("TINYFAAS_SOCKET is not set");
    return 2;
  }
  // Only the path this handler bound is its to remove.
  const std::string socket_path = listen_fd < 0 ? socket_env : "";

  ensure_std_fds();
  ::signal(SIGPIPE, SIG_IGN);

  try {
    asio::io_context io(1);

    Reaper reaper(io);
    g_reaper = &reaper;
    reaper.start();

    local::acceptor acceptor(io);
    if (listen_fd >= 0) {
      acceptor.assign(local(), listen_fd);
      set_cloexec(listen_fd);
    } else {
      ::unlink(socket_path.c_str());
      acceptor.open(local());
      set_cloexec(acceptor.native_handle());
      acceptor.bind(local::endpoint(socket_path));
      acceptor.listen(asio::socket_base::max_listen_connections);
    }

    asio::signal_set stop(io, SIGTERM, SIGINT);
    stop.async_wait([&](const boost::system::error_code& ec, int) {
      if (ec) return;
      if (!socket_path.empty()) ::unlink(socket_path.c_str());
      // Running fn.sh processes would otherwise outlive their handler.
      reaper.signal_all(SIGTERM);
      io.stop();
    });

    asio::co_spawn(io, accept_loop(acceptor), asio::detached);
    signal_ready(control);
    io.run();
  } catch (const std::exception& e) {
    log_line(std::string("fatal: ") + e.what());
    if (!socket_path.empty()) ::unlink(socket_path.c_str());
    return 1;
  }
  return 0;
}
