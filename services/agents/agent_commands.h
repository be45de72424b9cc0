// The `tessera agent ...` and `tessera ask` commands: import agent definitions from JSON files
// (creating the agent, or its next version), list and show agents, and ask an agent a question,
// streaming its answer, tool calls and sources to the terminal. Each returns a process exit code
// (0 ok, 1 failure, 2 usage or definition error).
#ifndef TESSERA_SERVICES_AGENTS_AGENT_COMMANDS_H_
#define TESSERA_SERVICES_AGENTS_AGENT_COMMANDS_H_

#include <cstdio>
#include <string>
#include <vector>

#include "services/gateway/client_commands.h"

namespace tessera::agents_service {

struct AgentCommandOptions {
  std::string action;     // import, list, get
  std::string path;       // import: the JSON file
  std::string agent_id;   // import: the id (default: the file name, e.g. hr-assistant); get: the agent
  int64_t version = 0;    // get: 0 = latest
};
int AgentCommand(const ClientOptions& client, const AgentCommandOptions& options, FILE* out, FILE* err);

struct AskCommandOptions {
  std::string agent_id;
  std::string message;
  std::string conversation_id;         // continue a conversation
  std::string as_user;                 // run as this principal (admin keys only)
  std::vector<std::string> as_groups;
  std::string approve = "ask";         // tool calls needing approval: ask (terminal), all, none
  bool show_tools = true;              // print tool calls and results to `err`
  bool json = false;                   // print every event as JSON lines instead
};
int AskCommand(const ClientOptions& client, const AskCommandOptions& options, FILE* in, FILE* out, FILE* err);

}  // namespace tessera::agents_service

#endif  // TESSERA_SERVICES_AGENTS_AGENT_COMMANDS_H_
