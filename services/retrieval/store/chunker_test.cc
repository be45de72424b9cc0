#include "services/retrieval/store/chunker.h"

#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "gtest/gtest.h"

namespace tessera::retrieval {
namespace {

std::vector<std::string> Tokens(absl::string_view text) {
  std::vector<std::string> out;
  for (const TokenSpan& s : WordTokenizer().Tokenize(text)) {
    out.emplace_back(text.substr(s.begin, s.end - s.begin));
  }
  return out;
}

// Words w<start> .. w<start+n-1>, space separated: every token unique.
std::string Words(int start, int n, absl::string_view end = "") {
  std::vector<std::string> w;
  for (int i = 0; i < n; ++i) w.push_back(absl::StrCat("w", start + i));
  return absl::StrCat(absl::StrJoin(w, " "), end);
}

bool IsValidUtf8(absl::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (len == 0 || i + len > s.size()) return false;
    for (size_t k = 1; k < len; ++k) {
      if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return false;
    }
    i += len;
  }
  return true;
}

std::vector<ChunkText> Chunk(const std::vector<Section>& sections, int max, int overlap,
                             absl::string_view title = "Title") {
  return ChunkDocument(title, sections, ChunkingOptions{max, overlap}, WordTokenizer());
}

TEST(WordTokenizerTest, WordsAndPunctuation) {
  EXPECT_EQ(Tokens("Hello, world! It's 3.14"),
            (std::vector<std::string>{"Hello", ",", "world", "!", "It", "'", "s", "3", ".", "14"}));
  EXPECT_EQ(Tokens("  \n\t "), std::vector<std::string>{});
  EXPECT_EQ(Tokens(""), std::vector<std::string>{});
  EXPECT_EQ(Tokens("snake_case x"), (std::vector<std::string>{"snake_case", "x"}));
}

TEST(WordTokenizerTest, Utf8Aware) {
  EXPECT_EQ(Tokens("naïve café\u00A0Zürich — “quoted” 東京です"),
            (std::vector<std::string>{"naïve", "café", "Zürich", "—", "“", "quoted", "”", "東",
                                      "京", "で", "す"}));
  EXPECT_EQ(Tokens("Привет, мир"), (std::vector<std::string>{"Привет", ",", "мир"}));
}

TEST(WordTokenizerTest, LongWordsAreCut) {
  const std::string word(100, 'a');
  const auto toks = Tokens(word);
  ASSERT_EQ(toks.size(), 4u);
  EXPECT_EQ(toks[0].size(), 32u);
  EXPECT_EQ(toks[3].size(), 4u);
  // Cut at character boundaries, not bytes.
  std::string accents;
  for (int i = 0; i < 40; ++i) accents += "é";
  const auto t2 = Tokens(accents);
  ASSERT_EQ(t2.size(), 2u);
  EXPECT_EQ(t2[0].size(), 64u);
  EXPECT_TRUE(IsValidUtf8(t2[0]));
  EXPECT_TRUE(IsValidUtf8(t2[1]));
}

TEST(WordTokenizerTest, InvalidBytesStayInWords) {
  const std::string text =
      "ab\xff\xfe"
      "cd \xc3 e\xe2\x82";
  const auto toks = Tokens(text);
  EXPECT_EQ(toks, (std::vector<std::string>{"ab\xff\xfe"
                                            "cd",
                                            "\xc3", "e\xe2\x82"}));
}

TEST(ChunkerTest, EmptyInputGivesNoChunks) {
  EXPECT_TRUE(Chunk({}, 10, 2).empty());
  EXPECT_TRUE(Chunk({{"h", "", 0}, {"h2", " \n\n \t\n", 0}}, 10, 2).empty());
}

TEST(ChunkerTest, PacksWholeParagraphs) {
  const std::string p1 = Words(0, 10), p2 = Words(10, 10), p3 = Words(20, 10);
  const std::string text = absl::StrCat(p1, "\n\n", p2, "\n \n", p3, "\n");
  const auto chunks = Chunk({{"Intro", text, 1}}, 25, 0);
  ASSERT_EQ(chunks.size(), 2u);
  EXPECT_EQ(chunks[0].text, absl::StrCat(p1, "\n\n", p2));
  EXPECT_EQ(chunks[0].token_count, 20);
  EXPECT_EQ(chunks[1].text, p3);
  EXPECT_EQ(chunks[1].token_count, 10);
  EXPECT_EQ(chunks[0].heading, "Intro");
  EXPECT_EQ(chunks[0].embed_text, absl::StrCat("Title\nIntro\n", chunks[0].text));
}

TEST(ChunkerTest, EmbedTextSkipsEmptyTitleAndHeading) {
  auto chunks = Chunk({{"", "hello world", 0}}, 10, 0, "");
  ASSERT_EQ(chunks.size(), 1u);
  EXPECT_EQ(chunks[0].embed_text, "hello world");
  chunks = Chunk({{"", "hello world", 0}}, 10, 0, "Doc");
  EXPECT_EQ(chunks[0].embed_text, "Doc\nhello world");
}

TEST(ChunkerTest, ParagraphOfExactlyMaxTokensIsOneChunk) {
  const auto chunks = Chunk({{"", Words(0, 16), 0}}, 16, 4);
  ASSERT_EQ(chunks.size(), 1u);
  EXPECT_EQ(chunks[0].token_count, 16);
}

TEST(ChunkerTest, NeverSpansSectionsAndNoOverlapAcrossThem) {
  const std::vector<Section> sections = {{"A", Words(0, 30), 1}, {"B", Words(100, 30), 2}};
  const auto chunks = Chunk(sections, 20, 5);
  ASSERT_GE(chunks.size(), 4u);
  int last_section = -1;
  for (const auto& c : chunks) {
    ASSERT_GE(c.section_index, last_section);
    if (c.section_index != last_section) {
      // The first chunk of a section starts at its first token: nothing carried over.
      EXPECT_EQ(Tokens(c.text).front(), c.section_index == 0 ? "w0" : "w100");
      last_section = c.section_index;
    }
    EXPECT_NE(sections[c.section_index].text.find(c.text), std::string::npos);
    EXPECT_EQ(c.heading, sections[c.section_index].heading);
  }
  EXPECT_EQ(last_section, 1);
}

TEST(ChunkerTest, OversizeParagraphSplitsAtSentenceEnds) {
  // Ten sentences of 8 tokens (7 words and a period).
  std::vector<std::string> sentences;
  for (int i = 0; i < 10; ++i) sentences.push_back(Words(i * 7, 7, "."));
  const std::string para = absl::StrJoin(sentences, " ");
  const std::string small = Words(500, 3);
  const auto chunks = Chunk({{"", absl::StrCat(small, "\n\n", para, "\n\n", small), 0}}, 20, 0);
  // The small paragraphs are not glued to the big one's pieces.
  ASSERT_EQ(chunks.size(), 7u);
  EXPECT_EQ(chunks.front().text, small);
  EXPECT_EQ(chunks.back().text, small);
  for (size_t i = 1; i + 1 < chunks.size(); ++i) {
    EXPECT_EQ(chunks[i].text.back(), '.') << chunks[i].text;
    EXPECT_LE(chunks[i].token_count, 20);
    EXPECT_EQ(chunks[i].token_count % 8, 0) << chunks[i].text;
  }
}

TEST(ChunkerTest, SentenceHeuristics) {
  // "3.14" and "e.g" are not sentence ends; ". " and "?\"" are; so is "。" without a space.
  const std::string text = "Pi is 3.14 e.g here. Really?\" Yes. 東京です。大阪です。";
  std::vector<std::string> pieces;
  for (const auto& c : Chunk({{"", text, 0}}, 5, 0)) pieces.push_back(c.text);
  EXPECT_EQ(pieces, (std::vector<std::string>{"Pi is 3.14", "e.g here.", "Really?\" Yes.",
                                              "東京です。", "大阪です。"}));
}

TEST(ChunkerTest, LongSentenceSplitsAtTokensWithOverlap) {
  const auto chunks = Chunk({{"", Words(0, 100), 0}}, 30, 5);
  ASSERT_GE(chunks.size(), 4u);
  for (size_t i = 0; i < chunks.size(); ++i) {
    EXPECT_LE(chunks[i].token_count, 30);
    if (i == 0) continue;
    const auto prev = Tokens(chunks[i - 1].text);
    const auto cur = Tokens(chunks[i].text);
    ASSERT_GE(cur.size(), 5u);
    EXPECT_EQ(std::vector<std::string>(prev.end() - 5, prev.end()),
              std::vector<std::string>(cur.begin(), cur.begin() + 5));
  }
  EXPECT_EQ(Tokens(chunks.back().text).back(), "w99");
}

TEST(ChunkerTest, OverlapBetweenPackedParagraphs) {
  std::string text;
  for (int i = 0; i < 10; ++i) absl::StrAppend(&text, Words(i * 10, 10), "\n\n");
  const auto chunks = Chunk({{"", text, 0}}, 24, 4);
  ASSERT_GE(chunks.size(), 2u);
  for (size_t i = 1; i < chunks.size(); ++i) {
    const auto prev = Tokens(chunks[i - 1].text);
    const auto cur = Tokens(chunks[i].text);
    EXPECT_EQ(std::vector<std::string>(prev.end() - 4, prev.end()),
              std::vector<std::string>(cur.begin(), cur.begin() + 4));
    EXPECT_EQ(chunks[i].token_count, static_cast<int>(cur.size()));
    EXPECT_LE(chunks[i].token_count, 24);
  }
}

TEST(ChunkerTest, OptionsAreClampedAndValidated) {
  EXPECT_TRUE(ValidateChunkingOptions({512, 64}).ok());
  EXPECT_TRUE(ValidateChunkingOptions({1, 0}).ok());
  EXPECT_EQ(ValidateChunkingOptions({0, 0}).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ValidateChunkingOptions({10, 6}).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ValidateChunkingOptions({10, -1}).code(), absl::StatusCode::kInvalidArgument);
  // max 0 -> 1 token per chunk, overlap clamped to 0.
  const auto chunks = Chunk({{"", "a b c", 0}}, 0, 7);
  ASSERT_EQ(chunks.size(), 3u);
  EXPECT_EQ(chunks[2].text, "c");
}

TEST(ChunkerTest, NeverSplitsUtf8Characters) {
  std::mt19937 rng(7);
  const std::vector<std::string> pieces = {"é", "東", "京", "😀",    "ß", "Ж", "a",
                                           " ", ".",  "\n", "\n\n", "—", "ü", "x"};
  std::string text;
  for (int i = 0; i < 3000; ++i) text += pieces[rng() % pieces.size()];
  for (int max : {1, 2, 3, 7}) {
    for (const auto& c : Chunk({{"", text, 0}}, max, max / 2)) {
      EXPECT_TRUE(IsValidUtf8(c.text)) << c.text;
      EXPECT_LE(c.token_count, max);
      EXPECT_NE(text.find(c.text), std::string::npos);
    }
  }
}

TEST(ChunkerTest, InvalidUtf8Survives) {
  std::string text = "start \xff\xfe\xfd middle \xc3 \xe2\x82 end.\n\n\x80\x80 tail";
  const auto chunks = Chunk({{"", text, 0}}, 3, 1);
  ASSERT_FALSE(chunks.empty());
  std::string all;
  for (const auto& c : chunks) {
    EXPECT_NE(text.find(c.text), std::string::npos);
    all += c.text;
  }
  EXPECT_NE(all.find("\xff\xfe\xfd"), std::string::npos);
  EXPECT_NE(all.find("\x80\x80"), std::string::npos);
  EXPECT_NE(all.find("tail"), std::string::npos);
}

// Randomised invariants: bounded size, exact substrings in order, every token covered, overlap
// exact and only within a section.
TEST(ChunkerTest, RandomDocumentsKeepInvariants) {
  std::mt19937 rng(42);
  int next_word = 0;
  for (int trial = 0; trial < 200; ++trial) {
    std::vector<Section> sections(1 + rng() % 4);
    for (auto& s : sections) {
      s.heading = absl::StrCat("H", rng() % 100);
      const int paras = rng() % 5;
      for (int p = 0; p < paras; ++p) {
        const int sentences = 1 + rng() % 6;
        for (int k = 0; k < sentences; ++k) {
          const int n = 1 + rng() % 25;
          absl::StrAppend(&s.text, Words(next_word, n, rng() % 3 == 0 ? "" : "."), " ");
          next_word += n;
        }
        s.text += rng() % 2 ? "\n\n" : "\n  \n\n";
      }
    }
    const int max = 1 + rng() % 40;
    const int overlap = rng() % (max / 2 + 1);
    const auto chunks = Chunk(sections, max, overlap);
    std::vector<std::vector<std::pair<size_t, size_t>>> ranges(sections.size());
    int prev_section = -1;
    size_t prev_start = 0, prev_end = 0;
    for (const auto& c : chunks) {
      ASSERT_LE(c.token_count, max);
      ASSERT_GE(c.token_count, 1);
      ASSERT_GE(c.section_index, prev_section);
      const bool same = c.section_index == prev_section;
      const std::string& text = sections[c.section_index].text;
      const size_t from = !same ? 0 : overlap == 0 ? prev_end : prev_start + 1;
      const size_t start = text.find(c.text, from);
      ASSERT_NE(start, std::string::npos) << c.text;
      const size_t end = start + c.text.size();
      int count = 0, shared = 0;
      for (const TokenSpan& t : WordTokenizer().Tokenize(text)) {
        if (t.begin >= start && t.end <= end) {
          ++count;
          if (same && t.end <= prev_end) ++shared;
        }
      }
      ASSERT_EQ(count, c.token_count);
      ASSERT_LE(shared, overlap);
      ranges[c.section_index].emplace_back(start, end);
      prev_section = c.section_index;
      prev_start = start;
      prev_end = end;
    }
    for (size_t s = 0; s < sections.size(); ++s) {
      for (const TokenSpan& t : WordTokenizer().Tokenize(sections[s].text)) {
        bool covered = false;
        for (const auto& [b, e] : ranges[s]) covered |= t.begin >= b && t.end <= e;
        ASSERT_TRUE(covered) << "trial " << trial << " section " << s << " token at " << t.begin;
      }
    }
  }
}

TEST(ChunkerTest, FiftyMegabytes) {
  std::mt19937 rng(1);
  const std::vector<std::string> vocab = {"alpha", "beta", "gamma", "delta", "épsilon",
                                          "東京",  "zeta", "eta",   "theta", "iota"};
  std::string text;
  text.reserve(52 << 20);
  while (text.size() < (50u << 20)) {
    const int words = 5 + rng() % 200;
    for (int i = 0; i < words; ++i) {
      text += vocab[rng() % vocab.size()];
      text += i % 17 == 16 ? ". " : " ";
    }
    text += rng() % 50 == 0 ? std::string(3000, 'x') : std::string();  // a long "word"
    text += "\n\n";
  }
  const auto chunks = Chunk({{"Big", text, 0}}, 512, 64);
  ASSERT_FALSE(chunks.empty());
  size_t bytes = 0;
  for (const auto& c : chunks) {
    ASSERT_LE(c.token_count, 512);
    bytes += c.text.size();
  }
  EXPECT_GE(bytes, text.size() * 9 / 10);
}

}  // namespace
}  // namespace tessera::retrieval
