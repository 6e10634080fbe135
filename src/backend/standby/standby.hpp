#pragma once
// A standby: a handler started ahead of need, its runtime up and no
// function yet, waiting on its control socket (handler_control.hpp) to be
// handed one. Each backend derives its own (a sandboxed process, a
// container); the warm pool only needs what is here.

#include <chrono>
#include <filesystem>
#include <string>
#include <string_view>

#include <boost/asio/local/stream_protocol.hpp>
#include <boost/system/result.hpp>

#include "backend/backend.hpp"
#include "sandbox/sandbox_identity.hpp"

namespace tinyfaas {

// The standby that starts `runtime`'s handlers: go handlers are programs
// of their own, which the binary runtime's standby execs.
constexpr Runtime standbyLauncher(Runtime runtime) { return runtime == Runtime::go ? Runtime::binary : runtime; }

class Standby {
 public:
  Standby(Runtime launcher, boost::asio::local::stream_protocol::socket control)
      : launcher(launcher), control(std::move(control)) {}
  virtual ~Standby() = default;
  Standby(const Standby&) = delete;
  Standby& operator=(const Standby&) = delete;

  // Its handler has ended (it is never handed out then).
  virtual bool ended() const = 0;
  // Called once should it end before a handover.
  virtual void onEnd(ExitCallback callback) = 0;

  const Runtime launcher;  // nodejs, python3 or binary (which also starts go handlers)
  // Where it says "standby" and waits for its function; not open while its
  // handler has not connected yet (a container's).
  boost::asio::local::stream_protocol::socket control;
  std::chrono::steady_clock::time_point started;
};

// A standby's own folder, STATE/standby/ID, new and empty, which the
// handler's user can read: bound read-only into the standby, the
// function's code is linked into it at the handover.
boost::system::result<std::filesystem::path, std::string> makeStandbyFolder(const std::filesystem::path& stateDir,
                                                                            const std::string& id,
                                                                            const sandbox::SandboxIdentity& identity);

// Whether an instance may take over a standby: not when its function sets
// a variable its interpreter reads only as it starts, since a standby's
// has started without it.
bool standbyCanServe(const InstanceSpec& spec);

// Whether the handler an instance ends up running says "ready" (go
// handlers do not: /health polling finds out).
constexpr bool saysReady(Runtime runtime) { return runtime != Runtime::go; }

}  // namespace tinyfaas
