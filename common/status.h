// Status helpers used at every fallible boundary in Tessera.
//
// RETURN_IF_ERROR(expr)        returns the absl::Status of `expr` from the
//                              enclosing function when it is not OK.
// ASSIGN_OR_RETURN(lhs, expr)  evaluates an absl::StatusOr<T>; on error returns
//                              its status, otherwise moves the value into `lhs`
//                              (which may be a declaration: `auto x`).
//
// Both work in functions returning absl::Status or absl::StatusOr<U>.
// Header-only; thread-compatible.
#ifndef TESSERA_COMMON_STATUS_H_
#define TESSERA_COMMON_STATUS_H_

#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace tessera {

// Returns `status` with `context` prepended to its message ("context: message"),
// keeping its code. An OK status is returned unchanged.
inline absl::Status Annotate(const absl::Status& status, absl::string_view context) {
  if (status.ok()) return status;
  return absl::Status(status.code(), absl::StrCat(context, ": ", status.message()));
}

}  // namespace tessera

#define TESSERA_STATUS_CONCAT_INNER_(a, b) a##b
#define TESSERA_STATUS_CONCAT_(a, b) TESSERA_STATUS_CONCAT_INNER_(a, b)

#define RETURN_IF_ERROR(expr)                                  \
  do {                                                         \
    ::absl::Status tessera_status_ = (expr);                   \
    if (!tessera_status_.ok()) return tessera_status_;         \
  } while (false)

#define TESSERA_ASSIGN_OR_RETURN_IMPL_(statusor, lhs, expr) \
  auto statusor = (expr);                                   \
  if (!statusor.ok()) return std::move(statusor).status();  \
  lhs = std::move(statusor).value()

#define ASSIGN_OR_RETURN(lhs, expr)                                                          \
  TESSERA_ASSIGN_OR_RETURN_IMPL_(TESSERA_STATUS_CONCAT_(tessera_statusor_, __LINE__), lhs, \
                                 expr)

#endif  // TESSERA_COMMON_STATUS_H_
