// SqliteAgentStore: agents (every version of their definitions) and conversations (their
// messages), in one SQLite database under the data dir. The source of truth for AgentService;
// access rules (who may see or change what) are the service's, not the store's.
#ifndef TESSERA_SERVICES_AGENTS_AGENT_STORE_H_
#define TESSERA_SERVICES_AGENTS_AGENT_STORE_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "common/clock.h"
#include "common/sqlite.h"
#include "tessera/v1/agents.pb.h"

namespace tessera::agents_service {

namespace v1 = ::tessera::v1;

// Thread-safe (one connection behind a mutex).
class SqliteAgentStore {
 public:
  // `path` ":memory:" for tests. Errors: those of SqliteDatabase::Open and its migrations.
  static absl::StatusOr<std::unique_ptr<SqliteAgentStore>> Open(const std::string& path, Clock* clock = RealClock());

  // --- Agents. Errors: NOT_FOUND, ALREADY_EXISTS, ABORTED (expected_version is stale). ---
  absl::StatusOr<v1::Agent> CreateAgent(const std::string& tenant, const std::string& id, const std::string& owner,
                                        const v1::AgentDefinition& definition);
  // version 0: the latest.
  absl::StatusOr<v1::Agent> GetAgent(const std::string& tenant, const std::string& id, int64_t version = 0);
  absl::StatusOr<v1::Agent> UpdateAgent(const std::string& tenant, const std::string& id,
                                        const v1::AgentDefinition& definition, int64_t expected_version);
  absl::Status DeleteAgent(const std::string& tenant, const std::string& id);
  // Latest versions, ordered by name then id.
  absl::StatusOr<std::vector<v1::Agent>> ListAgents(const std::string& tenant);
  // Newest first.
  absl::StatusOr<std::vector<v1::Agent>> ListAgentVersions(const std::string& tenant, const std::string& id);

  // --- Conversations. ---
  absl::StatusOr<v1::Conversation> CreateConversation(const std::string& tenant, const std::string& agent_id,
                                                      const std::string& user, const std::string& title);
  // With its messages when `with_messages`. NOT_FOUND.
  absl::StatusOr<v1::Conversation> GetConversation(const std::string& tenant, const std::string& id,
                                                   bool with_messages);
  // The user's conversations (optionally with one agent), most recently updated first.
  absl::StatusOr<std::vector<v1::Conversation>> ListConversations(const std::string& tenant, const std::string& user,
                                                                  const std::string& agent_id);
  absl::Status DeleteConversation(const std::string& tenant, const std::string& id);
  // Appends messages in one transaction, giving them ids and times; returns them as stored.
  absl::StatusOr<std::vector<v1::ConversationMessage>> AppendMessages(
      const std::string& tenant, const std::string& conversation_id, std::vector<v1::ConversationMessage> messages);
  // The last `limit` messages, oldest first.
  absl::StatusOr<std::vector<v1::ConversationMessage>> RecentMessages(const std::string& tenant,
                                                                      const std::string& conversation_id, int limit);

 private:
  SqliteAgentStore(std::unique_ptr<SqliteDatabase> db, Clock* clock) : db_(std::move(db)), clock_(clock) {}
  absl::StatusOr<v1::Agent> GetAgentLocked(const std::string& tenant, const std::string& id, int64_t version)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  absl::Mutex mu_;
  std::unique_ptr<SqliteDatabase> db_ ABSL_GUARDED_BY(mu_);
  Clock* clock_;
};

}  // namespace tessera::agents_service

#endif  // TESSERA_SERVICES_AGENTS_AGENT_STORE_H_
