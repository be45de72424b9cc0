// Agent definition files: parsing the JSON form of tessera.v1.AgentDefinition (the proto3 JSON
// mapping, lowerCamelCase or original field names), validating it against the rules written in
// agents.proto, printing it back as JSON, and the defaults the rest of the agent service applies
// (max iterations, tool timeouts, citations, top_k).
//
// Every error is INVALID_ARGUMENT and its message starts with the JSON path of the offending value
// in lowerCamelCase, e.g. "tools[1].mcpServer.url: must be an http or https URL", or "$" for the
// document as a whole. When a document has several problems, they are all reported (up to
// kMaxReportedProblems), joined by "; " in document order.
//
// All functions are pure and thread-safe.
#ifndef TESSERA_AGENTS_DEFINITION_DEFINITION_H_
#define TESSERA_AGENTS_DEFINITION_DEFINITION_H_

#include <cstddef>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "tessera/v1/agents.pb.h"

namespace tessera::agents {

// The model id of agents that answer extractively, by quoting the best passages their knowledge
// search finds, without a generative model. (Named ...Id so as not to clash with the
// orchestrator's own kExtractiveModel in this namespace.)
inline constexpr std::string_view kExtractiveModelId = "extractive";

// The largest definition document ParseAgentDefinitionJson accepts.
inline constexpr size_t kMaxDefinitionBytes = 1 << 20;

// The deepest nesting of JSON arrays and objects ParseAgentDefinitionJson accepts. The deepest
// valid definition nests about 6 levels; the limit keeps hostile input from exhausting the stack.
inline constexpr int kMaxJsonDepth = 32;

// The most problems one error message lists; further ones are summarised as "(and N more)".
inline constexpr int kMaxReportedProblems = 10;

// Limits from agents.proto.
inline constexpr int kMaxNameChars = 128;
inline constexpr int kMaxDescriptionChars = 1024;
inline constexpr int kMaxIterations = 50;
inline constexpr int kMaxTools = 32;
inline constexpr int kMaxStarterMessages = 8;
inline constexpr int kMaxTopK = 50;
inline constexpr int kMaxServerNameChars = 32;
inline constexpr int kMaxStopSequences = 16;
inline constexpr int kMaxStopSequenceBytes = 64;
inline constexpr absl::Duration kMaxToolTimeout = absl::Minutes(10);

// Defaults for zero or unset fields.
inline constexpr int kDefaultMaxIterations = 8;
inline constexpr int kDefaultTopK = 8;
inline constexpr absl::Duration kDefaultToolTimeout = absl::Seconds(60);
inline constexpr std::string_view kDefaultKnowledgeToolName = "search_knowledge";

// Parses an agent definition document. Checks the structure against the message descriptors
// (unknown fields, with a "did you mean" hint for near misses; wrong JSON types; bad enum values,
// durations and timestamps; two members of one oneof), not the semantic rules: call
// ValidateAgentDefinition for those.
// Errors: INVALID_ARGUMENT, e.g. `tools[0]: unknown field "mcp_sever" (did you mean
// "mcp_server"?)`, `knowledge.topK: expected an integer, got string "many"`,
// `$: not valid JSON at line 3 column 5: ...`.
[[nodiscard]] absl::StatusOr<tessera::v1::AgentDefinition> ParseAgentDefinitionJson(
    std::string_view json);

// Checks the rules of agents.proto: required fields, lengths, ranges, transports and their
// fields, unique server names, sharing emails, confirm_tools within allowed_tools, and so on.
// Does not check that models, collections or credentials exist.
// Errors: INVALID_ARGUMENT listing every problem, e.g. "knowledge.topK: must be in [0, 50]".
[[nodiscard]] absl::Status ValidateAgentDefinition(const tessera::v1::AgentDefinition& d);

// Parses then validates: the usual entry point for definition files.
[[nodiscard]] absl::StatusOr<tessera::v1::AgentDefinition> ParseAndValidateAgentDefinitionJson(
    std::string_view json);

// The definition as pretty-printed JSON with lowerCamelCase names, omitting default values, as
// `tessera agent get` shows it. ParseAgentDefinitionJson of the result gives `d` back.
[[nodiscard]] std::string AgentDefinitionToJson(const tessera::v1::AgentDefinition& d);

// max_iterations, or 8 when 0.
[[nodiscard]] int EffectiveMaxIterations(const tessera::v1::AgentDefinition& d);

// The limit on one call to a tool of `server` (nullptr for built-in tools): the server's timeout
// when positive, else the agent's tool_timeout when positive, else 60 seconds.
[[nodiscard]] absl::Duration EffectiveToolTimeout(const tessera::v1::AgentDefinition& d,
                                                  const tessera::v1::McpServerTool* server);

// citations_enabled, or true when unset.
[[nodiscard]] bool CitationsEnabled(const tessera::v1::AgentDefinition& d);

// knowledge.top_k, or 8 when 0.
[[nodiscard]] int EffectiveTopK(const tessera::v1::AgentDefinition& d);

// Whether the agent answers extractively (model "extractive").
[[nodiscard]] bool IsExtractive(const tessera::v1::AgentDefinition& d);

}  // namespace tessera::agents

#endif  // TESSERA_AGENTS_DEFINITION_DEFINITION_H_
