#pragma once

#include <string>

namespace tinyfaas {

// A one-line reason, as the error of a boost::system::result whose value is
// itself a string (a bare std::string error could not be told apart).
struct Failure {
  std::string message;
};

}  // namespace tinyfaas
