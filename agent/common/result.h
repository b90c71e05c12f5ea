// Errors as values at the syscall/libbpf/config boundary: a small expected-like type
// (std::expected is C++23; this project builds as C++20 with GCC 12).
#pragma once

#include <cerrno>
#include <string>
#include <utility>
#include <variant>

namespace podid {

struct Error {
    int code = 0;         // positive errno when the cause is a system call, else 0
    std::string message;  // one sentence an operator can act on
};

inline Error make_error(std::string message, int code = 0) { return Error{code, std::move(message)}; }

// E is the error type: Error by default; the Kubernetes client uses ApiError (HTTP status + API reason).
template <class T, class E = Error>
class Result {
public:
    Result(T value) : v_(std::move(value)) {}  // NOLINT(google-explicit-constructor)
    Result(E error) : v_(std::move(error)) {}  // NOLINT(google-explicit-constructor)
    bool ok() const { return v_.index() == 0; }
    explicit operator bool() const { return ok(); }
    T& value() & { return std::get<0>(v_); }
    const T& value() const& { return std::get<0>(v_); }
    T&& value() && { return std::get<0>(std::move(v_)); }
    T& operator*() & { return value(); }
    const T& operator*() const& { return value(); }
    T* operator->() { return &value(); }
    const T* operator->() const { return &value(); }
    const E& error() const { return std::get<1>(v_); }

private:
    std::variant<T, E> v_;
};

template <>
class Result<void, Error> {
public:
    Result() = default;
    Result(Error error) : err_(std::move(error)), ok_(false) {}  // NOLINT(google-explicit-constructor)
    bool ok() const { return ok_; }
    explicit operator bool() const { return ok_; }
    const Error& error() const { return err_; }

private:
    Error err_;
    bool ok_ = true;
};

}  // namespace podid
