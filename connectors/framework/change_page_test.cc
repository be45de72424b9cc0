#include "connectors/framework/change_page.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tessera::connectors {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

DocumentOutcome Upsert(std::string id, std::string title) {
  DocumentOutcome o;
  o.kind = DocumentOutcome::kUpsert;
  o.doc.id = std::move(id);
  o.doc.title = std::move(title);
  return o;
}

DocumentOutcome Of(DocumentOutcome::Kind kind, std::string id) {
  DocumentOutcome o;
  o.kind = kind;
  if (kind == DocumentOutcome::kFailure) {
    o.failure.id = std::move(id);
  } else {
    o.doc.id = std::move(id);
  }
  return o;
}

std::vector<std::string> Titles(const ChangePage &page) {
  std::vector<std::string> out;
  for (const ConnectorDocument &d : page.upserts) out.push_back(d.id + ":" + d.title);
  return out;
}

TEST(CollectLastPerIdTest, LastOutcomePerIdWinsAndKindsStayDisjoint) {
  std::vector<DocumentOutcome> outcomes;
  outcomes.push_back(Upsert("a", "old"));
  outcomes.push_back(Of(DocumentOutcome::kDelete, "b"));
  outcomes.push_back(Upsert("a", "new"));
  outcomes.push_back(Upsert("b", "back"));
  outcomes.push_back(Of(DocumentOutcome::kFailure, "c"));
  outcomes.push_back(Upsert("d", "gone"));
  outcomes.push_back(Of(DocumentOutcome::kDelete, "d"));
  outcomes.push_back(Upsert("e", "skipped"));
  outcomes.push_back(Of(DocumentOutcome::kSkip, "e"));
  ChangePage page;
  CollectLastPerId(std::move(outcomes), &page);
  EXPECT_THAT(Titles(page), ElementsAre("a:new", "b:back"));
  EXPECT_THAT(page.deletes, ElementsAre("d"));
  ASSERT_EQ(page.failures.size(), 1u);
  EXPECT_EQ(page.failures[0].id, "c");
}

TEST(CollectLastPerIdTest, AppendsToWhatThePageHolds) {
  ChangePage page;
  page.deletes.push_back("x");
  CollectLastPerId({}, &page);
  EXPECT_THAT(page.upserts, IsEmpty());
  EXPECT_THAT(page.deletes, ElementsAre("x"));
}

TEST(SetDownloadFailureTest, NotFoundIsADeleteAnythingElseAFailure) {
  DocumentOutcome gone = Upsert("a", "t");
  SetDownloadFailure(absl::NotFoundError("404"), &gone);
  EXPECT_EQ(gone.kind, DocumentOutcome::kDelete);
  DocumentOutcome failed = Upsert("b", "t");
  SetDownloadFailure(absl::PermissionDeniedError("403"), &failed);
  EXPECT_EQ(failed.kind, DocumentOutcome::kFailure);
  EXPECT_EQ(failed.failure.status.code(), absl::StatusCode::kPermissionDenied);
}

TEST(FetchedDocumentTest, DocumentFailureOrGone) {
  absl::Status gone = absl::NotFoundError("x is gone");
  auto doc = FetchedDocument(Upsert("a", "title"), gone);
  ASSERT_TRUE(doc.ok());
  EXPECT_EQ(doc->title, "title");
  DocumentOutcome failure = Of(DocumentOutcome::kFailure, "b");
  failure.failure.status = absl::DataLossError("bad pdf");
  EXPECT_EQ(FetchedDocument(failure, gone).status().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(FetchedDocument(Of(DocumentOutcome::kDelete, "c"), gone).status(), gone);
  EXPECT_EQ(FetchedDocument(Of(DocumentOutcome::kSkip, "d"), gone).status(), gone);
}

}  // namespace
}  // namespace tessera::connectors
