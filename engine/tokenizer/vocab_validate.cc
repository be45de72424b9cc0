#include "absl/strings/str_cat.h"
#include "engine/tokenizer/vocab.h"

namespace tessera::engine {

absl::Status ValidateVocab(const Vocab& vocab) {
  const size_t n = vocab.tokens.size();
  if (n == 0) return absl::InvalidArgumentError("vocabulary has no tokens");
  if (n > (size_t{1} << 30)) return absl::InvalidArgumentError("vocabulary is too large");
  if (!vocab.scores.empty() && vocab.scores.size() != n) {
    return absl::InvalidArgumentError(absl::StrCat("vocabulary has ", n, " tokens but ",
                                                   vocab.scores.size(), " scores"));
  }
  if (!vocab.token_types.empty() && vocab.token_types.size() != n) {
    return absl::InvalidArgumentError(absl::StrCat("vocabulary has ", n, " tokens but ",
                                                   vocab.token_types.size(), " token types"));
  }
  for (size_t i = 0; i < vocab.token_types.size(); ++i) {
    if (vocab.token_types[i] < kTokenNormal || vocab.token_types[i] > kTokenByte) {
      return absl::InvalidArgumentError(
          absl::StrCat("token ", i, " has invalid token type ", vocab.token_types[i]));
    }
  }
  const std::pair<const char*, int32_t> specials[] = {
      {"bos", vocab.bos}, {"eos", vocab.eos}, {"unk", vocab.unk},   {"pad", vocab.pad},
      {"sep", vocab.sep}, {"cls", vocab.cls}, {"mask", vocab.mask}};
  for (const auto& [name, id] : specials) {
    if (id < -1 || id >= static_cast<int64_t>(n)) {
      return absl::InvalidArgumentError(absl::StrCat(name, " token id ", id,
                                                     " is outside the vocabulary of ", n));
    }
  }
  return absl::OkStatus();
}

}  // namespace tessera::engine
