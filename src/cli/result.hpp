#pragma once
// The client reports what users and the network can cause as values, through
// the codebase's one error channel, boost::system::result, with a one-line
// reason as the error.

#include <string>
#include <type_traits>
#include <utility>

#include <boost/system/result.hpp>

namespace tinyfaas::cli {

template <class T, class E = std::string>
using Result = boost::system::result<T, E>;

// Where the value is itself a string, result<std::string, std::string>
// cannot tell a value from an error by type; `return failure(reason);` and
// `return success(body);` say which is meant. failure() is used everywhere
// alike, success() only where the types collide.
template <class E>
struct Failure {
  E error;
  template <class T>
  operator boost::system::result<T, E>() && {
    return boost::system::result<T, E>(boost::system::in_place_error, std::move(error));
  }
};

template <class E>
Failure<std::decay_t<E>> failure(E&& error) {
  return {std::forward<E>(error)};
}

template <class T>
struct Success {
  T value;
  template <class E>
  operator boost::system::result<T, E>() && {
    return boost::system::result<T, E>(boost::system::in_place_value, std::move(value));
  }
};

template <class T>
Success<std::decay_t<T>> success(T&& value) {
  return {std::forward<T>(value)};
}

}  // namespace tinyfaas::cli
