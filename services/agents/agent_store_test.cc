#include "services/agents/agent_store.h"

#include "gtest/gtest.h"

namespace tessera::agents_service {
namespace {

v1::AgentDefinition Def(const std::string& name) {
  v1::AgentDefinition d;
  d.set_name(name);
  d.set_model("extractive");
  return d;
}

TEST(AgentStore, VersionsAgentsAndKeepsOldVersionsReadable) {
  auto store = SqliteAgentStore::Open(":memory:");
  ASSERT_TRUE(store.ok()) << store.status();
  auto& s = **store;
  auto a = s.CreateAgent("t", "hr", "ann@x.com", Def("HR v1"));
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->version(), 1);
  EXPECT_EQ(a->owner(), "ann@x.com");
  EXPECT_EQ(s.CreateAgent("t", "hr", "bob@x.com", Def("again")).status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_TRUE(s.CreateAgent("other-tenant", "hr", "bob@x.com", Def("theirs")).ok());
  auto b = s.UpdateAgent("t", "hr", Def("HR v2"), 1);
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(b->version(), 2);
  EXPECT_EQ(s.UpdateAgent("t", "hr", Def("stale"), 1).status().code(), absl::StatusCode::kAborted);
  EXPECT_EQ(s.GetAgent("t", "hr")->definition().name(), "HR v2");
  EXPECT_EQ(s.GetAgent("t", "hr", 1)->definition().name(), "HR v1");
  EXPECT_EQ(s.GetAgent("t", "hr", 3).status().code(), absl::StatusCode::kNotFound);
  auto versions = s.ListAgentVersions("t", "hr");
  ASSERT_TRUE(versions.ok());
  ASSERT_EQ(versions->size(), 2u);
  EXPECT_EQ((*versions)[0].version(), 2);
  EXPECT_EQ(s.ListAgents("t")->size(), 1u);
  ASSERT_TRUE(s.DeleteAgent("t", "hr").ok());
  EXPECT_EQ(s.GetAgent("t", "hr").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(s.GetAgent("t", "hr", 1).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(s.DeleteAgent("t", "hr").code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(s.ListAgents("other-tenant")->size(), 1u);
}

TEST(AgentStore, ConversationsKeepMessagesInOrderPerUser) {
  auto store = SqliteAgentStore::Open(":memory:");
  ASSERT_TRUE(store.ok());
  auto& s = **store;
  auto c = s.CreateConversation("t", "hr", "ann@x.com", "Travel?");
  ASSERT_TRUE(c.ok());
  std::vector<v1::ConversationMessage> msgs(3);
  msgs[0].set_role(v1::ROLE_USER);
  msgs[0].set_content("q1");
  msgs[1].set_role(v1::ROLE_ASSISTANT);
  msgs[1].set_content("a1 [1]");
  msgs[1].add_citations()->set_index(1);
  msgs[2].set_role(v1::ROLE_USER);
  msgs[2].set_content("q2");
  auto stored = s.AppendMessages("t", c->id(), msgs);
  ASSERT_TRUE(stored.ok()) << stored.status();
  EXPECT_EQ((*stored)[0].id(), "msg-1");
  EXPECT_EQ((*stored)[2].id(), "msg-3");
  auto recent = s.RecentMessages("t", c->id(), 2);
  ASSERT_TRUE(recent.ok());
  ASSERT_EQ(recent->size(), 2u);
  EXPECT_EQ((*recent)[0].content(), "a1 [1]");
  EXPECT_EQ((*recent)[0].citations_size(), 1);
  EXPECT_EQ((*recent)[1].content(), "q2");
  auto full = s.GetConversation("t", c->id(), true);
  ASSERT_TRUE(full.ok());
  EXPECT_EQ(full->messages_size(), 3);
  EXPECT_EQ(full->title(), "Travel?");
  EXPECT_EQ(s.ListConversations("t", "ann@x.com", "")->size(), 1u);
  EXPECT_EQ(s.ListConversations("t", "bob@x.com", "")->size(), 0u);
  EXPECT_EQ(s.ListConversations("t", "ann@x.com", "other-agent")->size(), 0u);
  EXPECT_EQ(s.AppendMessages("t", "nope", msgs).status().code(), absl::StatusCode::kNotFound);
  ASSERT_TRUE(s.DeleteConversation("t", c->id()).ok());
  EXPECT_EQ(s.GetConversation("t", c->id(), true).status().code(), absl::StatusCode::kNotFound);
}

TEST(AgentStore, SurvivesReopening) {
  const std::string path = ::testing::TempDir() + "/agents_reopen.db";
  std::remove(path.c_str());
  {
    auto s = SqliteAgentStore::Open(path);
    ASSERT_TRUE(s.ok());
    ASSERT_TRUE((*s)->CreateAgent("t", "hr", "ann@x.com", Def("HR")).ok());
  }
  auto s = SqliteAgentStore::Open(path);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ((*s)->GetAgent("t", "hr")->definition().name(), "HR");
}

}  // namespace
}  // namespace tessera::agents_service
