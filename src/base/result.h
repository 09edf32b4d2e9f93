// base/result: Result<T> holds either a value or an Error (tl::expected is not packaged).
#pragma once

#include <cassert>
#include <type_traits>
#include <utility>
#include <variant>

#include "base/error.h"

namespace jiceng {

template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::in_place_index<0>, std::move(value)) {}  // NOLINT: implicit by design
  Result(Error error) : v_(std::in_place_index<1>, std::move(error)) {}  // NOLINT

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }

  T& value() & { assert(ok()); return std::get<0>(v_); }
  const T& value() const& { assert(ok()); return std::get<0>(v_); }
  T&& value() && { assert(ok()); return std::get<0>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

  const Error& error() const& { assert(!ok()); return std::get<1>(v_); }
  Error&& error() && { assert(!ok()); return std::get<1>(std::move(v_)); }

 private:
  std::variant<T, Error> v_;
};

// Result<void>: success or an Error.
class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(Error error) : error_(std::move(error)), ok_(false) {}  // NOLINT: implicit by design
  static Status Ok() { return Status(); }
  bool ok() const { return ok_; }
  explicit operator bool() const { return ok_; }
  const Error& error() const& { assert(!ok_); return error_; }
  Error&& error() && { assert(!ok_); return std::move(error_); }

 private:
  Error error_;
  bool ok_ = true;
};

}  // namespace jiceng

// Propagate an error from an expression returning Status or Result<T>.
#define JC_CONCAT_INNER(a, b) a##b
#define JC_CONCAT(a, b) JC_CONCAT_INNER(a, b)
#define JC_RETURN_IF_ERROR(expr)                              \
  do {                                                        \
    auto&& jc_status_ = (expr);                               \
    if (!jc_status_.ok()) return std::move(jc_status_).error(); \
  } while (0)
#define JC_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto&& tmp = (expr);                           \
  if (!tmp.ok()) return std::move(tmp).error();  \
  lhs = std::move(tmp).value()
#define JC_ASSIGN_OR_RETURN(lhs, expr) \
  JC_ASSIGN_OR_RETURN_IMPL(JC_CONCAT(jc_result_, __LINE__), lhs, expr)
