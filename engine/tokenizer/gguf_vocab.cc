#include "engine/tokenizer/gguf_vocab.h"

#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/status.h"

namespace tessera::engine {

namespace {

// Reads an optional integer id key into *id.
absl::Status ReadId(const GgufFile& file, std::string_view key, int32_t* id) {
  absl::StatusOr<int64_t> value = file.GetInt(key);
  if (absl::IsNotFound(value.status())) return absl::OkStatus();
  if (!value.ok()) return value.status();
  // llama.cpp writes "no such token" as -1 stored in a uint32 (4294967295).
  if (*value == int64_t{UINT32_MAX}) {
    *id = -1;
    return absl::OkStatus();
  }
  if (*value < -1 || *value > INT32_MAX) {
    return absl::InvalidArgumentError(
        absl::StrCat("GGUF key ", std::string(key), " has out-of-range value ", *value));
  }
  *id = static_cast<int32_t>(*value);
  return absl::OkStatus();
}

absl::Status ReadFlag(const GgufFile& file, std::string_view key, bool* flag) {
  absl::StatusOr<bool> value = file.GetBool(key);
  if (absl::IsNotFound(value.status())) return absl::OkStatus();
  if (!value.ok()) return value.status();
  *flag = *value;
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<Vocab> VocabFromGguf(const GgufFile& file) {
  absl::StatusOr<std::string_view> model = file.GetString("tokenizer.ggml.model");
  if (absl::IsNotFound(model.status())) {
    return absl::NotFoundError("GGUF file has no tokenizer (tokenizer.ggml.model is missing)");
  }
  if (!model.ok()) return model.status();
  Vocab vocab;
  if (*model == "llama") {
    vocab.kind = Vocab::Kind::kLlamaSpm;
  } else if (*model == "bert") {
    vocab.kind = Vocab::Kind::kWordPiece;
    vocab.add_bos = false;
    vocab.add_space_prefix = false;
  } else if (*model == "gpt2") {
    vocab.kind = Vocab::Kind::kBpe;
    vocab.add_bos = false;
    vocab.add_space_prefix = false;
  } else {
    return absl::UnimplementedError(absl::StrCat("GGUF tokenizer model \"", std::string(*model),
                                                 "\" is not supported (llama, bert, gpt2 are)"));
  }

  absl::StatusOr<std::vector<std::string_view>> tokens =
      file.GetStringArray("tokenizer.ggml.tokens");
  if (absl::IsNotFound(tokens.status())) {
    return absl::NotFoundError("GGUF file has no tokenizer.ggml.tokens");
  }
  if (!tokens.ok()) return tokens.status();
  vocab.tokens.assign(tokens->begin(), tokens->end());

  if (absl::StatusOr<std::vector<float>> scores = file.GetFloatArray("tokenizer.ggml.scores");
      scores.ok()) {
    vocab.scores = std::move(*scores);
  } else if (!absl::IsNotFound(scores.status())) {
    return scores.status();
  }
  if (absl::StatusOr<std::vector<int64_t>> types = file.GetIntArray("tokenizer.ggml.token_type");
      types.ok()) {
    vocab.token_types.reserve(types->size());
    for (const int64_t type : *types) {
      if (type < kTokenNormal || type > kTokenByte) {
        return absl::InvalidArgumentError(
            absl::StrCat("tokenizer.ggml.token_type holds invalid type ", type));
      }
      vocab.token_types.push_back(static_cast<int32_t>(type));
    }
  } else if (!absl::IsNotFound(types.status())) {
    return types.status();
  }
  if (absl::StatusOr<std::vector<std::string_view>> merges =
          file.GetStringArray("tokenizer.ggml.merges");
      merges.ok()) {
    vocab.merges.assign(merges->begin(), merges->end());
  } else if (!absl::IsNotFound(merges.status())) {
    return merges.status();
  }

  RETURN_IF_ERROR(ReadId(file, "tokenizer.ggml.bos_token_id", &vocab.bos));
  RETURN_IF_ERROR(ReadId(file, "tokenizer.ggml.eos_token_id", &vocab.eos));
  RETURN_IF_ERROR(ReadId(file, "tokenizer.ggml.unknown_token_id", &vocab.unk));
  RETURN_IF_ERROR(ReadId(file, "tokenizer.ggml.padding_token_id", &vocab.pad));
  RETURN_IF_ERROR(ReadId(file, "tokenizer.ggml.seperator_token_id", &vocab.sep));
  RETURN_IF_ERROR(ReadId(file, "tokenizer.ggml.cls_token_id", &vocab.cls));
  RETURN_IF_ERROR(ReadId(file, "tokenizer.ggml.mask_token_id", &vocab.mask));
  RETURN_IF_ERROR(ReadFlag(file, "tokenizer.ggml.add_bos_token", &vocab.add_bos));
  RETURN_IF_ERROR(ReadFlag(file, "tokenizer.ggml.add_eos_token", &vocab.add_eos));
  RETURN_IF_ERROR(ReadFlag(file, "tokenizer.ggml.add_space_prefix", &vocab.add_space_prefix));
  if (absl::Status status = ValidateVocab(vocab); !status.ok()) {
    return Annotate(status, "GGUF tokenizer");
  }
  return vocab;
}

}  // namespace tessera::engine
