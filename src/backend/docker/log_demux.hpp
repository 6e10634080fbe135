#pragma once
// Splits a container's log stream into lines.
//
// Without a TTY the engine multiplexes stdout and stderr on one stream: each
// frame is an 8-byte header (stream id: 0 stdin, 1 stdout, 2 stderr; three
// zero bytes; payload length, 32-bit big-endian) and the payload. Frames and
// lines are cut anywhere by the transport, so the state carries over between
// feed() calls. Memory stays bounded: payload bytes go straight into a
// per-stream line buffer, and over-long lines are handed on in pieces.

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

namespace tinyfaas::docker {

class LogDemuxer {
 public:
  enum class Framing { multiplexed, raw };
  // stream: 1 stdout, 2 stderr (0 stdin never carries output; raw framing
  // reports everything as stdout).
  using LineHandler = std::function<void(int stream, std::string_view line)>;

  LogDemuxer(Framing framing, LineHandler onLine, std::size_t maxLineBytes = 8192);

  // Consumes bytes; false once a frame header was malformed (the rest of the
  // stream is then ignored: it cannot be resynchronised).
  bool feed(std::string_view bytes);
  // Hands on unterminated last lines (at the end of the stream).
  void finish();
  bool broken() const { return broken_; }

 private:
  void payload(int stream, std::string_view bytes);
  void emit(int stream);

  Framing framing_;
  LineHandler onLine_;
  std::size_t maxLineBytes_;
  std::array<unsigned char, 8> header_{};
  std::size_t headerFill_ = 0;
  std::uint32_t remaining_ = 0;  // payload bytes left in the current frame
  int current_ = 1;
  std::array<std::string, 3> partial_;
  bool broken_ = false;
};

}  // namespace tinyfaas::docker
