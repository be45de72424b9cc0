// FakeTokenizer: a byte-level Tokenizer for tests. Ids 0-2 are <unk>, <s>, </s>; the control
// pieces given to the constructor follow from id 3; every byte b of text is its own token
// kByteBase + b, whose piece is that byte. parse_special=true turns the exact text of a
// control piece into its token (so a test can tell whether a caller asked for it).
#ifndef TESSERA_ENGINE_CHAT_FAKE_TOKENIZER_H_
#define TESSERA_ENGINE_CHAT_FAKE_TOKENIZER_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/types/span.h"
#include "engine/tokenizer/tokenizer.h"

namespace tessera::engine {

class FakeTokenizer : public Tokenizer {
 public:
  static constexpr int32_t kByteBase = 1000;

  explicit FakeTokenizer(std::vector<std::string> control_pieces) {
    pieces_ = {"<unk>", "<s>", "</s>"};
    for (auto& p : control_pieces) pieces_.push_back(std::move(p));
  }

  // The control pieces of each Mistral format's vocabulary.
  static FakeTokenizer V3() {
    return FakeTokenizer({"[INST]", "[/INST]", "[TOOL_CALLS]", "[AVAILABLE_TOOLS]",
                          "[/AVAILABLE_TOOLS]", "[TOOL_RESULTS]", "[/TOOL_RESULTS]"});
  }
  static FakeTokenizer V7() {
    return FakeTokenizer({"[INST]", "[/INST]", "[TOOL_CALLS]", "[AVAILABLE_TOOLS]",
                          "[/AVAILABLE_TOOLS]", "[TOOL_RESULTS]", "[/TOOL_RESULTS]",
                          "[SYSTEM_PROMPT]", "[/SYSTEM_PROMPT]", "[TOOL_CONTENT]"});
  }
  static FakeTokenizer V11() {
    return FakeTokenizer({"[INST]", "[/INST]", "[TOOL_CALLS]", "[AVAILABLE_TOOLS]",
                          "[/AVAILABLE_TOOLS]", "[TOOL_RESULTS]", "[/TOOL_RESULTS]",
                          "[SYSTEM_PROMPT]", "[/SYSTEM_PROMPT]", "[TOOL_CONTENT]", "[ARGS]",
                          "[CALL_ID]"});
  }

  std::string_view kind() const override { return "fake"; }

  std::vector<int32_t> Encode(std::string_view text, bool add_special,
                              bool parse_special = false) const override {
    std::vector<int32_t> ids;
    if (add_special) ids.push_back(1);
    size_t i = 0;
    while (i < text.size()) {
      bool matched = false;
      if (parse_special) {
        for (size_t p = 0; p < pieces_.size(); ++p) {
          if (text.substr(i, pieces_[p].size()) == pieces_[p]) {
            ids.push_back(static_cast<int32_t>(p));
            i += pieces_[p].size();
            matched = true;
            break;
          }
        }
      }
      if (!matched) ids.push_back(kByteBase + static_cast<unsigned char>(text[i++]));
    }
    return ids;
  }

  std::string Decode(absl::Span<const int32_t> ids, bool keep_special = false) const override {
    std::string out;
    for (int32_t id : ids) {
      if (id >= kByteBase || keep_special) out += Piece(id);
    }
    return out;
  }

  std::string TokenText(int32_t /*prev*/, int32_t id) const override {
    return id >= kByteBase && id < kByteBase + 256 ? Piece(id) : std::string();
  }
  int32_t vocab_size() const override { return kByteBase + 256; }
  std::optional<int32_t> TokenId(std::string_view piece) const override {
    for (size_t p = 0; p < pieces_.size(); ++p) {
      if (pieces_[p] == piece) return static_cast<int32_t>(p);
    }
    return std::nullopt;
  }
  std::string Piece(int32_t id) const override {
    if (id >= kByteBase && id < kByteBase + 256) {
      return std::string(1, static_cast<char>(id - kByteBase));
    }
    if (id >= 0 && static_cast<size_t>(id) < pieces_.size()) return pieces_[id];
    return std::string();
  }
  bool IsControl(int32_t id) const override {
    return id > 0 && static_cast<size_t>(id) < pieces_.size();
  }
  int32_t bos_id() const override { return 1; }
  int32_t eos_id() const override { return 2; }
  int32_t unk_id() const override { return 0; }
  int32_t pad_id() const override { return -1; }

  // Ids of `text` as if generated: control pieces by id, the rest byte by byte.
  std::vector<int32_t> Generated(std::string_view text) const {
    return Encode(text, /*add_special=*/false, /*parse_special=*/true);
  }

 private:
  std::vector<std::string> pieces_;
};

}  // namespace tessera::engine

#endif  // TESSERA_ENGINE_CHAT_FAKE_TOKENIZER_H_
