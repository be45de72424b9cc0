#include "agents/mcp/transport.h"

#include "absl/strings/cord.h"

namespace tessera::mcp {
namespace {
constexpr char kSessionExpiredPayload[] = "tessera.mcp/session-expired";
}  // namespace

absl::Status MarkSessionExpired(absl::Status status) {
  status.SetPayload(kSessionExpiredPayload, absl::Cord("1"));
  return status;
}

bool IsSessionExpired(const absl::Status& status) {
  return status.GetPayload(kSessionExpiredPayload).has_value();
}

}  // namespace tessera::mcp
