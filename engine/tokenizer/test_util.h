// Test-only helpers for engine/tokenizer/ tests: locating files under testdata/ in the Bazel
// runfiles tree, reading llama.cpp-style vector files (.inp/.out) and rebuilding the prompts of the
// rendered Mistral chat vectors.
#ifndef TESSERA_ENGINE_TOKENIZER_TEST_UTIL_H_
#define TESSERA_ENGINE_TOKENIZER_TEST_UTIL_H_

#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

namespace tessera::engine::testing {

// Path of engine/tokenizer/testdata/<name> in the runfiles tree.
inline std::string TestDataPath(const std::string& name) {
  const char* srcdir = std::getenv("TEST_SRCDIR");
  return std::string(srcdir ? srcdir : ".") + "/tessera/engine/tokenizer/testdata/" + name;
}

// Whole file contents, or "" when it cannot be read (tests then fail on their expectations).
inline std::string ReadTestFile(const std::string& name) {
  std::ifstream in(TestDataPath(name), std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

// A test string and the ids it must tokenize to.
struct VectorCase {
  std::string text;
  std::vector<int32_t> ids;
};

// Reads <base>.inp (strings separated by "\n__ggml_vocab_test__\n") and <base>.out (one line of
// space-separated ids per string).
inline std::vector<VectorCase> ReadVectors(const std::string& base) {
  const std::string inp = ReadTestFile(base + ".inp");
  const std::string out = ReadTestFile(base + ".out");
  const std::string sep = "\n__ggml_vocab_test__\n";
  std::vector<std::string> texts;
  size_t start = 0;
  while (true) {
    const size_t pos = inp.find(sep, start);
    if (pos == std::string::npos) break;
    texts.push_back(inp.substr(start, pos - start));
    start = pos + sep.size();
  }
  std::vector<std::vector<int32_t>> ids;
  std::istringstream lines(out);
  std::string line;
  while (std::getline(lines, line)) {
    std::istringstream words(line);
    std::vector<int32_t> row;
    int64_t id;
    while (words >> id) row.push_back(static_cast<int32_t>(id));
    ids.push_back(std::move(row));
  }
  std::vector<VectorCase> cases;
  for (size_t i = 0; i < texts.size() && i < ids.size(); ++i) {
    cases.push_back({texts[i], ids[i]});
  }
  return cases;
}

// Rebuilds the prompt of a rendered Mistral chat (testdata/mistral-chat-vectors/*/text_*.txt):
// "▁" that follows a control token is the dummy prefix of the next stretch of text, every other
// "▁" is a space; "<0x0A>" is a newline. `Tok` is a Tokenizer (a template so that this header
// needs no dependency).
template <typename Tok>
std::string PromptFromRendered(const std::string& rendered, const Tok& tokenizer) {
  const std::string mark = "\xE2\x96\x81";
  std::string out;
  bool after_control = false;
  for (size_t i = 0; i < rendered.size();) {
    if (rendered.compare(i, mark.size(), mark) == 0) {
      if (!after_control) out += ' ';
      i += mark.size();
      after_control = false;
      continue;
    }
    after_control = false;
    if (rendered.compare(i, 6, "<0x0A>") == 0) {  // the rendering shows newlines as byte pieces
      out += '\n';
      i += 6;
      continue;
    }
    if (rendered[i] == '<' || rendered[i] == '[') {
      const size_t close = rendered.find(rendered[i] == '<' ? '>' : ']', i);
      if (close != std::string::npos) {
        const std::string candidate = rendered.substr(i, close - i + 1);
        auto id = tokenizer.TokenId(candidate);
        if (id && tokenizer.IsControl(*id)) {
          out += candidate;
          i = close + 1;
          after_control = true;
          continue;
        }
      }
    }
    out += rendered[i++];
  }
  return out;
}

}  // namespace tessera::engine::testing

#endif  // TESSERA_ENGINE_TOKENIZER_TEST_UTIL_H_
