#include "services/agents/agent_store.h"

#include <algorithm>
#include <random>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "google/protobuf/util/time_util.h"

namespace tessera::agents_service {
namespace {

using google::protobuf::util::TimeUtil;

constexpr char kSchemaV1[] = R"sql(
CREATE TABLE agent_versions (
  tenant TEXT NOT NULL,
  agent_id TEXT NOT NULL,
  version INTEGER NOT NULL,
  owner TEXT NOT NULL,
  name TEXT NOT NULL,
  definition BLOB NOT NULL,
  create_us INTEGER NOT NULL,
  PRIMARY KEY (tenant, agent_id, version)
);
CREATE TABLE agents (
  tenant TEXT NOT NULL,
  agent_id TEXT NOT NULL,
  latest INTEGER NOT NULL,
  owner TEXT NOT NULL,
  create_us INTEGER NOT NULL,
  PRIMARY KEY (tenant, agent_id)
);
CREATE TABLE conversations (
  tenant TEXT NOT NULL,
  id TEXT NOT NULL,
  agent_id TEXT NOT NULL,
  user TEXT NOT NULL,
  title TEXT NOT NULL,
  create_us INTEGER NOT NULL,
  update_us INTEGER NOT NULL,
  next_message INTEGER NOT NULL DEFAULT 1,
  PRIMARY KEY (tenant, id)
);
CREATE INDEX conversations_by_user ON conversations (tenant, user, update_us);
CREATE TABLE messages (
  tenant TEXT NOT NULL,
  conversation_id TEXT NOT NULL,
  seq INTEGER NOT NULL,
  message BLOB NOT NULL,
  PRIMARY KEY (tenant, conversation_id, seq)
);
)sql";

google::protobuf::Timestamp Ts(int64_t us) { return TimeUtil::MicrosecondsToTimestamp(us); }

std::string RandomId(absl::string_view prefix) {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  static constexpr char kAlphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789";
  std::string id(prefix);
  for (int i = 0; i < 16; ++i) id.push_back(kAlphabet[rng() % 36]);
  return id;
}

v1::Conversation ConversationFromRow(SqliteStatement& q) {
  v1::Conversation c;
  c.set_id(q.ColumnText(0));
  c.set_agent_id(q.ColumnText(1));
  c.set_user(q.ColumnText(2));
  c.set_title(q.ColumnText(3));
  *c.mutable_create_time() = Ts(q.ColumnInt(4));
  *c.mutable_update_time() = Ts(q.ColumnInt(5));
  return c;
}

}  // namespace

absl::StatusOr<std::unique_ptr<SqliteAgentStore>> SqliteAgentStore::Open(const std::string& path, Clock* clock) {
  ASSIGN_OR_RETURN(auto db, SqliteDatabase::Open(path, {}));
  static const auto* kMigrations = new std::vector<SqliteMigration>{
      {1, "agents, versions, conversations, messages", kSchemaV1},
  };
  RETURN_IF_ERROR(Annotate(db->Migrate(*kMigrations), absl::StrCat("agent store ", path)));
  return std::unique_ptr<SqliteAgentStore>(new SqliteAgentStore(std::move(db), clock));
}

absl::StatusOr<v1::Agent> SqliteAgentStore::CreateAgent(const std::string& tenant, const std::string& id,
                                                        const std::string& owner,
                                                        const v1::AgentDefinition& definition) {
  absl::MutexLock lock(&mu_);
  const int64_t now = absl::ToUnixMicros(clock_->Now());
  ASSIGN_OR_RETURN(auto tx, SqliteTransaction::Begin(db_.get()));
  {
    ASSIGN_OR_RETURN(auto q, db_->Prepare("SELECT 1 FROM agents WHERE tenant = ? AND agent_id = ?"));
    RETURN_IF_ERROR(q.Bind(1, tenant));
    RETURN_IF_ERROR(q.Bind(2, id));
    ASSIGN_OR_RETURN(bool exists, q.Step());
    if (exists) return absl::AlreadyExistsError(absl::StrCat("agent '", id, "' already exists"));
  }
  ASSIGN_OR_RETURN(auto a, db_->Prepare("INSERT INTO agents VALUES (?, ?, 1, ?, ?)"));
  RETURN_IF_ERROR(a.Bind(1, tenant));
  RETURN_IF_ERROR(a.Bind(2, id));
  RETURN_IF_ERROR(a.Bind(3, owner));
  RETURN_IF_ERROR(a.Bind(4, now));
  RETURN_IF_ERROR(a.Run());
  ASSIGN_OR_RETURN(auto v, db_->Prepare("INSERT INTO agent_versions VALUES (?, ?, 1, ?, ?, ?, ?)"));
  RETURN_IF_ERROR(v.Bind(1, tenant));
  RETURN_IF_ERROR(v.Bind(2, id));
  RETURN_IF_ERROR(v.Bind(3, owner));
  RETURN_IF_ERROR(v.Bind(4, definition.name()));
  RETURN_IF_ERROR(v.BindBlob(5, definition.SerializeAsString()));
  RETURN_IF_ERROR(v.Bind(6, now));
  RETURN_IF_ERROR(v.Run());
  RETURN_IF_ERROR(tx->Commit());
  return GetAgentLocked(tenant, id, 1);
}

absl::StatusOr<v1::Agent> SqliteAgentStore::GetAgent(const std::string& tenant, const std::string& id,
                                                     int64_t version) {
  absl::MutexLock lock(&mu_);
  return GetAgentLocked(tenant, id, version);
}

absl::StatusOr<v1::Agent> SqliteAgentStore::GetAgentLocked(const std::string& tenant, const std::string& id,
                                                           int64_t version) {
  ASSIGN_OR_RETURN(auto q, db_->Prepare(
                               "SELECT v.version, v.definition, a.owner, a.create_us, v.create_us "
                               "FROM agents a JOIN agent_versions v ON v.tenant = a.tenant AND v.agent_id = a.agent_id "
                               "WHERE a.tenant = ? AND a.agent_id = ? AND v.version = "
                               "CASE WHEN ? = 0 THEN a.latest ELSE ? END"));
  RETURN_IF_ERROR(q.Bind(1, tenant));
  RETURN_IF_ERROR(q.Bind(2, id));
  RETURN_IF_ERROR(q.Bind(3, version));
  RETURN_IF_ERROR(q.Bind(4, version));
  ASSIGN_OR_RETURN(bool row, q.Step());
  if (!row) {
    return absl::NotFoundError(version == 0 ? absl::StrCat("agent '", id, "' not found")
                                            : absl::StrCat("agent '", id, "' has no version ", version));
  }
  v1::Agent agent;
  agent.set_id(id);
  agent.set_version(q.ColumnInt(0));
  if (!agent.mutable_definition()->ParseFromString(q.ColumnBlob(1))) {
    return absl::DataLossError(absl::StrCat("agent '", id, "' version ", agent.version(), " is corrupt"));
  }
  agent.set_owner(q.ColumnText(2));
  *agent.mutable_create_time() = Ts(q.ColumnInt(3));
  *agent.mutable_update_time() = Ts(q.ColumnInt(4));
  return agent;
}

absl::StatusOr<v1::Agent> SqliteAgentStore::UpdateAgent(const std::string& tenant, const std::string& id,
                                                        const v1::AgentDefinition& definition,
                                                        int64_t expected_version) {
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(auto tx, SqliteTransaction::Begin(db_.get()));
  ASSIGN_OR_RETURN(v1::Agent current, GetAgentLocked(tenant, id, 0));
  if (expected_version != 0 && expected_version != current.version()) {
    return absl::AbortedError(absl::StrCat("agent '", id, "' is at version ", current.version(), ", not ",
                                           expected_version, "; get it again and reapply the change"));
  }
  const int64_t next = current.version() + 1;
  ASSIGN_OR_RETURN(auto v, db_->Prepare("INSERT INTO agent_versions VALUES (?, ?, ?, ?, ?, ?, ?)"));
  RETURN_IF_ERROR(v.Bind(1, tenant));
  RETURN_IF_ERROR(v.Bind(2, id));
  RETURN_IF_ERROR(v.Bind(3, next));
  RETURN_IF_ERROR(v.Bind(4, current.owner()));
  RETURN_IF_ERROR(v.Bind(5, definition.name()));
  RETURN_IF_ERROR(v.BindBlob(6, definition.SerializeAsString()));
  RETURN_IF_ERROR(v.Bind(7, absl::ToUnixMicros(clock_->Now())));
  RETURN_IF_ERROR(v.Run());
  ASSIGN_OR_RETURN(auto u, db_->Prepare("UPDATE agents SET latest = ? WHERE tenant = ? AND agent_id = ?"));
  RETURN_IF_ERROR(u.Bind(1, next));
  RETURN_IF_ERROR(u.Bind(2, tenant));
  RETURN_IF_ERROR(u.Bind(3, id));
  RETURN_IF_ERROR(u.Run());
  RETURN_IF_ERROR(tx->Commit());
  return GetAgentLocked(tenant, id, next);
}

absl::Status SqliteAgentStore::DeleteAgent(const std::string& tenant, const std::string& id) {
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(auto tx, SqliteTransaction::Begin(db_.get()));
  for (const char* sql : {"DELETE FROM agent_versions WHERE tenant = ? AND agent_id = ?",
                          "DELETE FROM agents WHERE tenant = ? AND agent_id = ?"}) {
    ASSIGN_OR_RETURN(auto q, db_->Prepare(sql));
    RETURN_IF_ERROR(q.Bind(1, tenant));
    RETURN_IF_ERROR(q.Bind(2, id));
    RETURN_IF_ERROR(q.Run());
  }
  if (db_->Changes() == 0) return absl::NotFoundError(absl::StrCat("agent '", id, "' not found"));
  return tx->Commit();
}

absl::StatusOr<std::vector<v1::Agent>> SqliteAgentStore::ListAgents(const std::string& tenant) {
  absl::MutexLock lock(&mu_);
  std::vector<std::string> ids;
  {
    ASSIGN_OR_RETURN(auto q, db_->Prepare(
                                 "SELECT a.agent_id FROM agents a JOIN agent_versions v ON v.tenant = a.tenant AND "
                                 "v.agent_id = a.agent_id AND v.version = a.latest WHERE a.tenant = ? "
                                 "ORDER BY v.name, a.agent_id"));
    RETURN_IF_ERROR(q.Bind(1, tenant));
    while (true) {
      ASSIGN_OR_RETURN(bool row, q.Step());
      if (!row) break;
      ids.push_back(q.ColumnText(0));
    }
  }
  std::vector<v1::Agent> out;
  for (const auto& id : ids) {
    ASSIGN_OR_RETURN(v1::Agent a, GetAgentLocked(tenant, id, 0));
    out.push_back(std::move(a));
  }
  return out;
}

absl::StatusOr<std::vector<v1::Agent>> SqliteAgentStore::ListAgentVersions(const std::string& tenant,
                                                                           const std::string& id) {
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(v1::Agent latest, GetAgentLocked(tenant, id, 0));
  std::vector<v1::Agent> out;
  for (int64_t v = latest.version(); v >= 1; --v) {
    ASSIGN_OR_RETURN(v1::Agent a, GetAgentLocked(tenant, id, v));
    out.push_back(std::move(a));
  }
  return out;
}

absl::StatusOr<v1::Conversation> SqliteAgentStore::CreateConversation(const std::string& tenant,
                                                                      const std::string& agent_id,
                                                                      const std::string& user,
                                                                      const std::string& title) {
  absl::MutexLock lock(&mu_);
  const int64_t now = absl::ToUnixMicros(clock_->Now());
  const std::string id = RandomId("conv-");
  ASSIGN_OR_RETURN(auto q, db_->Prepare("INSERT INTO conversations VALUES (?, ?, ?, ?, ?, ?, ?, 1)"));
  RETURN_IF_ERROR(q.Bind(1, tenant));
  RETURN_IF_ERROR(q.Bind(2, id));
  RETURN_IF_ERROR(q.Bind(3, agent_id));
  RETURN_IF_ERROR(q.Bind(4, user));
  RETURN_IF_ERROR(q.Bind(5, title));
  RETURN_IF_ERROR(q.Bind(6, now));
  RETURN_IF_ERROR(q.Bind(7, now));
  RETURN_IF_ERROR(q.Run());
  v1::Conversation c;
  c.set_id(id);
  c.set_agent_id(agent_id);
  c.set_user(user);
  c.set_title(title);
  *c.mutable_create_time() = Ts(now);
  *c.mutable_update_time() = Ts(now);
  return c;
}

absl::StatusOr<v1::Conversation> SqliteAgentStore::GetConversation(const std::string& tenant, const std::string& id,
                                                                   bool with_messages) {
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(auto q, db_->Prepare("SELECT id, agent_id, user, title, create_us, update_us FROM conversations "
                                        "WHERE tenant = ? AND id = ?"));
  RETURN_IF_ERROR(q.Bind(1, tenant));
  RETURN_IF_ERROR(q.Bind(2, id));
  ASSIGN_OR_RETURN(bool row, q.Step());
  if (!row) return absl::NotFoundError(absl::StrCat("conversation '", id, "' not found"));
  v1::Conversation c = ConversationFromRow(q);
  if (with_messages) {
    ASSIGN_OR_RETURN(auto m, db_->Prepare("SELECT message FROM messages WHERE tenant = ? AND conversation_id = ? "
                                          "ORDER BY seq"));
    RETURN_IF_ERROR(m.Bind(1, tenant));
    RETURN_IF_ERROR(m.Bind(2, id));
    while (true) {
      ASSIGN_OR_RETURN(bool more, m.Step());
      if (!more) break;
      if (!c.add_messages()->ParseFromString(m.ColumnBlob(0))) {
        return absl::DataLossError(absl::StrCat("conversation '", id, "' has a corrupt message"));
      }
    }
  }
  return c;
}

absl::StatusOr<std::vector<v1::Conversation>> SqliteAgentStore::ListConversations(const std::string& tenant,
                                                                                  const std::string& user,
                                                                                  const std::string& agent_id) {
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(auto q, db_->Prepare("SELECT id, agent_id, user, title, create_us, update_us FROM conversations "
                                        "WHERE tenant = ? AND user = ? AND (? = '' OR agent_id = ?) "
                                        "ORDER BY update_us DESC, id"));
  RETURN_IF_ERROR(q.Bind(1, tenant));
  RETURN_IF_ERROR(q.Bind(2, user));
  RETURN_IF_ERROR(q.Bind(3, agent_id));
  RETURN_IF_ERROR(q.Bind(4, agent_id));
  std::vector<v1::Conversation> out;
  while (true) {
    ASSIGN_OR_RETURN(bool row, q.Step());
    if (!row) break;
    out.push_back(ConversationFromRow(q));
  }
  return out;
}

absl::Status SqliteAgentStore::DeleteConversation(const std::string& tenant, const std::string& id) {
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(auto tx, SqliteTransaction::Begin(db_.get()));
  ASSIGN_OR_RETURN(auto m, db_->Prepare("DELETE FROM messages WHERE tenant = ? AND conversation_id = ?"));
  RETURN_IF_ERROR(m.Bind(1, tenant));
  RETURN_IF_ERROR(m.Bind(2, id));
  RETURN_IF_ERROR(m.Run());
  ASSIGN_OR_RETURN(auto c, db_->Prepare("DELETE FROM conversations WHERE tenant = ? AND id = ?"));
  RETURN_IF_ERROR(c.Bind(1, tenant));
  RETURN_IF_ERROR(c.Bind(2, id));
  RETURN_IF_ERROR(c.Run());
  if (db_->Changes() == 0) return absl::NotFoundError(absl::StrCat("conversation '", id, "' not found"));
  return tx->Commit();
}

absl::StatusOr<std::vector<v1::ConversationMessage>> SqliteAgentStore::AppendMessages(
    const std::string& tenant, const std::string& conversation_id, std::vector<v1::ConversationMessage> messages) {
  absl::MutexLock lock(&mu_);
  const int64_t now = absl::ToUnixMicros(clock_->Now());
  ASSIGN_OR_RETURN(auto tx, SqliteTransaction::Begin(db_.get()));
  ASSIGN_OR_RETURN(auto q, db_->Prepare("SELECT next_message FROM conversations WHERE tenant = ? AND id = ?"));
  RETURN_IF_ERROR(q.Bind(1, tenant));
  RETURN_IF_ERROR(q.Bind(2, conversation_id));
  ASSIGN_OR_RETURN(bool row, q.Step());
  if (!row) return absl::NotFoundError(absl::StrCat("conversation '", conversation_id, "' not found"));
  int64_t seq = q.ColumnInt(0);
  for (auto& m : messages) {
    m.set_id(absl::StrCat("msg-", seq));
    *m.mutable_create_time() = Ts(now);
    ASSIGN_OR_RETURN(auto ins, db_->Prepare("INSERT INTO messages VALUES (?, ?, ?, ?)"));
    RETURN_IF_ERROR(ins.Bind(1, tenant));
    RETURN_IF_ERROR(ins.Bind(2, conversation_id));
    RETURN_IF_ERROR(ins.Bind(3, seq));
    RETURN_IF_ERROR(ins.BindBlob(4, m.SerializeAsString()));
    RETURN_IF_ERROR(ins.Run());
    ++seq;
  }
  ASSIGN_OR_RETURN(auto u, db_->Prepare("UPDATE conversations SET next_message = ?, update_us = ? "
                                        "WHERE tenant = ? AND id = ?"));
  RETURN_IF_ERROR(u.Bind(1, seq));
  RETURN_IF_ERROR(u.Bind(2, now));
  RETURN_IF_ERROR(u.Bind(3, tenant));
  RETURN_IF_ERROR(u.Bind(4, conversation_id));
  RETURN_IF_ERROR(u.Run());
  RETURN_IF_ERROR(tx->Commit());
  return messages;
}

absl::StatusOr<std::vector<v1::ConversationMessage>> SqliteAgentStore::RecentMessages(
    const std::string& tenant, const std::string& conversation_id, int limit) {
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(auto q, db_->Prepare("SELECT message FROM messages WHERE tenant = ? AND conversation_id = ? "
                                        "ORDER BY seq DESC LIMIT ?"));
  RETURN_IF_ERROR(q.Bind(1, tenant));
  RETURN_IF_ERROR(q.Bind(2, conversation_id));
  RETURN_IF_ERROR(q.Bind(3, static_cast<int64_t>(limit)));
  std::vector<v1::ConversationMessage> out;
  while (true) {
    ASSIGN_OR_RETURN(bool row, q.Step());
    if (!row) break;
    v1::ConversationMessage m;
    if (!m.ParseFromString(q.ColumnBlob(0))) return absl::DataLossError("a stored message is corrupt");
    out.push_back(std::move(m));
  }
  std::reverse(out.begin(), out.end());
  return out;
}

}  // namespace tessera::agents_service
