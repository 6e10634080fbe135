#pragma once
// Drives one client connection against a server living on `io`, on the
// fuzzer's own thread: sends `bytes`, half-closes, and runs the loop until
// the server has closed its side. A server that neither answers nor closes
// within `patience` is reported as a hang (abort), which is a finding.

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include <boost/asio/io_context.hpp>

namespace tinyfaas::fuzz {

// Returns what the server sent back.
std::string exchangeOverTcp(boost::asio::io_context& io, std::uint16_t port, std::string_view bytes,
                            std::chrono::milliseconds patience = std::chrono::seconds(5));

}  // namespace tinyfaas::fuzz
