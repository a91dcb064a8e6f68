// Result<T>: a value or an error, for the steady state where nothing may throw.
// A small stand-in for std::expected (not in the C++20 library of clang 14).
// The error is an errno-style code and a message naming the thing and the cause.
#pragma once

#include <string>
#include <utility>
#include <variant>

namespace chip {

struct Error {
    int code = 0;         // positive errno value (EINVAL, ENOENT, ...)
    std::string message;  // "unknown registry \"x\"", without a trailing newline
    bool operator==(const Error &) const = default;
};

template <typename T>
class Result {
public:
    Result(T value) : v_(std::move(value)) {}
    Result(Error error) : v_(std::move(error)) {}

    bool ok() const { return v_.index() == 0; }
    explicit operator bool() const { return ok(); }
    T &value() { return std::get<0>(v_); }
    const T &value() const { return std::get<0>(v_); }
    T &operator*() { return value(); }
    const T &operator*() const { return value(); }
    T *operator->() { return &value(); }
    const T *operator->() const { return &value(); }
    const Error &error() const { return std::get<1>(v_); }

private:
    std::variant<T, Error> v_;
};

template <>
class Result<void> {
public:
    Result() = default;
    Result(Error error) : err_(std::move(error)), ok_(false) {}

    bool ok() const { return ok_; }
    explicit operator bool() const { return ok_; }
    const Error &error() const { return err_; }
    bool operator==(const Result &o) const { return ok_ == o.ok_ && (ok_ || err_ == o.err_); }

private:
    Error err_;
    bool ok_ = true;
};

inline Error make_error(int code, std::string message) {
    return Error{code, std::move(message)};
}

}  // namespace chip
