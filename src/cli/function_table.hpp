#pragma once
// How /functions reads in a terminal: `tinyfaas list`'s table and the
// durations in it.

#include <string>

#include <nlohmann/json_fwd.hpp>

namespace tinyfaas::cli {

// NAME RUNTIME INSTANCES CALLS ERRORS P50, one row per function of the
// /functions list, columns as wide as their widest cell; INSTANCES is
// healthy/desired, P50 "-" before the first call. Quarantined functions
// (an admin's view) get a row and, below the table, a line saying why.
std::string functionTable(const nlohmann::json& functions);

// "850 µs", "12.3 ms", "1.25 s": three significant digits at most.
std::string formatMillis(double milliseconds);
std::string formatSeconds(double seconds);

}  // namespace tinyfaas::cli
