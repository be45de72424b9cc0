// Conversion between absl::Status (used everywhere inside Tessera) and
// grpc::Status (used only at the service edge). Codes map one to one: both
// follow the canonical google.rpc.Code numbering. Thread-safe, stateless.
#ifndef TESSERA_COMMON_GRPC_STATUS_H_
#define TESSERA_COMMON_GRPC_STATUS_H_

#include "absl/status/status.h"
#include "grpcpp/support/status.h"

namespace tessera {

// The one conversion at the edge of every service: keeps code and message.
[[nodiscard]] grpc::Status ToGrpcStatus(const absl::Status& status);

// For callers of a stub: turns the RPC outcome back into an absl::Status.
[[nodiscard]] absl::Status FromGrpcStatus(const grpc::Status& status);

}  // namespace tessera

#endif  // TESSERA_COMMON_GRPC_STATUS_H_
