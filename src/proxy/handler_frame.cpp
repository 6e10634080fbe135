#include "proxy/handler_frame.hpp"

namespace tinyfaas::frame {

namespace {

void putU32(std::string& out, std::size_t value) {
  const auto v = static_cast<std::uint32_t>(value);
  const char bytes[4] = {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8),
                         static_cast<char>(v)};
  out.append(bytes, 4);
}

void putU16(std::string& out, std::size_t value) {
  const auto v = static_cast<std::uint16_t>(value);
  const char bytes[2] = {static_cast<char>(v >> 8), static_cast<char>(v)};
  out.append(bytes, 2);
}

std::uint32_t getU32(std::string_view bytes) {
  const auto b = [&](std::size_t i) { return static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[i])); };
  return b(0) << 24 | b(1) << 16 | b(2) << 8 | b(3);
}

}  // namespace

std::string encodeRequest(const Invocation& invocation, std::chrono::milliseconds timeLeft) {
  // Names come from HTTP, CoAP or gRPC parsers that bound them far below
  // 64 KiB; a longer one could not be framed and is left out. A client's
  // own time-left header would pass for the proxy's.
  const auto sent = [](const std::string& name) { return name.size() <= 0xFFFF && name != kTimeLeftHeader; };
  const std::string left = std::to_string(timeLeft.count());
  std::size_t headerBytes = 6 + kTimeLeftHeader.size() + left.size();
  for (const auto& [name, value] : invocation.headers)
    if (sent(name)) headerBytes += 6 + name.size() + value.size();
  std::string out;
  out.reserve(8 + headerBytes + invocation.payload.size());
  putU32(out, headerBytes);
  putU32(out, invocation.payload.size());
  const auto put = [&out](std::string_view name, std::string_view value) {
    putU16(out, name.size());
    out.append(name);
    putU32(out, value.size());
    out.append(value);
  };
  for (const auto& [name, value] : invocation.headers)
    if (sent(name)) put(name, value);
  put(kTimeLeftHeader, left);
  out.append(invocation.payload);
  return out;
}

ResponseHead decodeResponseHead(std::string_view head) {
  return {getU32(head), getU32(head.substr(4)), getU32(head.substr(8))};
}

std::optional<HeaderList> decodeHeaders(std::string_view block) {
  HeaderList headers;
  while (!block.empty()) {
    if (block.size() < 2) return std::nullopt;
    const std::size_t nameBytes = static_cast<unsigned char>(block[0]) << 8 | static_cast<unsigned char>(block[1]);
    if (block.size() < 2 + nameBytes + 4) return std::nullopt;
    std::string name(block.substr(2, nameBytes));
    const std::size_t valueBytes = getU32(block.substr(2 + nameBytes));
    block.remove_prefix(6 + nameBytes);
    if (block.size() < valueBytes) return std::nullopt;
    headers.emplace_back(std::move(name), std::string(block.substr(0, valueBytes)));
    block.remove_prefix(valueBytes);
  }
  return headers;
}

}  // namespace tinyfaas::frame
