#include "agents/orchestrator/citations.h"

#include "gtest/gtest.h"

namespace tessera::agents {
namespace {

tessera::v1::SearchHit Hit(const std::string& chunk, const std::string& title) {
  tessera::v1::SearchHit h;
  h.set_collection("acme");
  h.set_chunk_id(chunk);
  h.set_document_id("doc-" + chunk);
  h.set_title(title);
  h.set_snippet("snippet of " + title);
  h.set_text("full text of " + title);
  return h;
}

TEST(CitationMarkers, FindsSingleAdjacentAndListedMarkersOnce) {
  EXPECT_EQ(FindCitationMarkers("a [1] b [2][3] c [4, 5] d [1]"), (std::vector<int>{1, 2, 3, 4, 5}));
}

TEST(CitationMarkers, IgnoresWhatIsNotAMarker) {
  EXPECT_TRUE(FindCitationMarkers("[x] [] [1 [a, 2] [-1] [12345] [1.5] [").empty());
  EXPECT_EQ(FindCitationMarkers("see [link](http://x) and [2]"), (std::vector<int>{2}));
}

TEST(SourceTable, NumbersAcrossSearchesAndKeepsNumbersOfRepeatedChunks) {
  SourceTable t;
  EXPECT_EQ(t.Add({Hit("c1", "A"), Hit("c2", "B")}), (std::vector<int>{1, 2}));
  EXPECT_EQ(t.Add({Hit("c3", "C"), Hit("c1", "A")}), (std::vector<int>{3, 1}));
  EXPECT_EQ(t.size(), 3u);
  EXPECT_EQ(t.CitationFor(3).title(), "C");
  EXPECT_EQ(t.CitationFor(3).document_id(), "doc-c3");
  EXPECT_EQ(t.CitationFor(4).index(), 0);
  const std::string shown = t.FormatForModel({Hit("c3", "C")}, {3});
  EXPECT_NE(shown.find("[3] C"), std::string::npos);
  EXPECT_NE(shown.find("full text of C"), std::string::npos);
}

TEST(CitationTracker, ReportsEachValidSourceOnceWhenItsMarkerCompletes) {
  SourceTable t;
  t.Add({Hit("c1", "A"), Hit("c2", "B")});
  CitationTracker tr(&t);
  EXPECT_TRUE(tr.Update("Flights are economy [").empty());
  EXPECT_EQ(tr.Update("Flights are economy [2"), std::vector<int>{});
  EXPECT_EQ(tr.Update("Flights are economy [2]"), std::vector<int>{2});
  EXPECT_EQ(tr.Update("Flights are economy [2] and [2][9]"), std::vector<int>{});
  EXPECT_EQ(tr.invalid(), std::vector<int>{9});
  EXPECT_EQ(tr.cited(), std::vector<int>{2});
}

TEST(TruncateUtf8, NeverSplitsACharacter) {
  EXPECT_EQ(TruncateUtf8("h\xC3\xA9llo", 2), "h");
  EXPECT_EQ(TruncateUtf8("h\xC3\xA9llo", 3), "h\xC3\xA9");
  EXPECT_EQ(TruncateUtf8("abc", 10), "abc");
}

}  // namespace
}  // namespace tessera::agents
