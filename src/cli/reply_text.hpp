#pragma once
// How replies reach the terminal: the same shapes for the management API,
// HTTP and CoAP, so scripts can rely on them.

#include <ostream>
#include <string>
#include <string_view>

namespace tinyfaas::cli {

// "404 Not Found: no such function" (or "404 Not Found" for an empty body).
// Always one line, since scripts read errors line by line: the daemon's
// reason is one line already, but a failing function's output may be a
// whole traceback, so inner line breaks and other control characters are
// escaped ("\n", "\x1b") and a body above 2000 bytes is cut short.
std::string statusLine(unsigned status, std::string_view reason, std::string_view body);
std::string statusLine(std::string_view status, std::string_view body);

// Writes `body` byte for byte. A terminal also gets a final newline if the
// body lacks one, so the prompt does not glue onto the output; a pipe gets
// the bytes unchanged.
void printBody(std::ostream& out, std::string_view body, bool outIsTerminal);

// For the management API's line-oriented text (names, endpoint URLs, logs):
// always ends with a newline when non-empty, so `while read` loops in shell
// scripts see the last line too.
void printLines(std::ostream& out, std::string_view text);

}  // namespace tinyfaas::cli
