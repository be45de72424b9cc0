// Validates JSON values against JSON Schemas (tool outputSchema ->
// structuredContent). Backed by valijson (Debian libvalijson-dev, header-only)
// in draft-07 mode, which also covers the keywords MCP servers emit for
// 2020-12 schemas (type, properties, required, items, enum, const,
// additionalProperties, anyOf/oneOf/allOf, $ref to local "#/$defs/..").
// Schemas valijson cannot compile (remote $ref, unknown dialect features)
// are reported as UNIMPLEMENTED so callers can decide to skip validation.
// Thread-safe (no shared state).
#ifndef TESSERA_AGENTS_MCP_SCHEMA_VALIDATOR_H_
#define TESSERA_AGENTS_MCP_SCHEMA_VALIDATOR_H_

#include "absl/status/status.h"
#include "agents/mcp/json_rpc.h"

namespace tessera::mcp {

// OK when `value` conforms to `schema`. INVALID_ARGUMENT naming the first few
// failing locations ("/sum: expected type number") when it does not;
// UNIMPLEMENTED when the schema itself cannot be compiled.
[[nodiscard]] absl::Status ValidateAgainstSchema(const Json& schema, const Json& value);

}  // namespace tessera::mcp

#endif  // TESSERA_AGENTS_MCP_SCHEMA_VALIDATOR_H_
