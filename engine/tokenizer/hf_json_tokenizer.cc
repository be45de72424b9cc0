#include "engine/tokenizer/hf_json_tokenizer.h"

#include <sys/stat.h>

#include <exception>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "engine/tokenizer/llama_spm_tokenizer.h"
#include "engine/tokenizer/text_util.h"
#include "engine/tokenizer/vocab.h"
#include "engine/tokenizer/wordpiece_tokenizer.h"
#include "nlohmann/json.hpp"

namespace tessera::engine {

namespace {

using Json = nlohmann::json;

// True when any object in `node` (recursively) has "type": `type`.
bool HasComponent(const Json& node, std::string_view type) {
  if (node.is_object()) {
    const auto it = node.find("type");
    if (it != node.end() && it->is_string() && it->get<std::string>() == type) return true;
  }
  if (node.is_object() || node.is_array()) {
    for (const auto& child : node) {
      if (HasComponent(child, type)) return true;
    }
  }
  return false;
}

// Fills vocab.tokens from model.vocab ({"piece": id}); ids must be dense from 0.
absl::Status ReadVocabMap(const Json& model, Vocab* vocab) {
  const auto it = model.find("vocab");
  if (it == model.end() || !it->is_object()) {
    return absl::InvalidArgumentError("tokenizer.json: model.vocab must be an object");
  }
  const size_t n = it->size();
  vocab->tokens.assign(n, std::string());
  std::vector<bool> seen(n, false);
  for (const auto& [piece, id_json] : it->items()) {
    if (!id_json.is_number_integer()) {
      return absl::InvalidArgumentError(
          absl::StrCat("tokenizer.json: model.vocab[\"", piece, "\"] is not an integer id"));
    }
    const int64_t id = id_json.get<int64_t>();
    if (id < 0 || id >= static_cast<int64_t>(n) || seen[id]) {
      return absl::InvalidArgumentError(absl::StrCat(
          "tokenizer.json: model.vocab ids must be 0..", n - 1, " without repeats; \"", piece,
          "\" has ", id));
    }
    seen[id] = true;
    vocab->tokens[id] = piece;
  }
  return absl::OkStatus();
}

// Applies added_tokens: special -> control, others -> user-defined; ids beyond the model vocab
// extend it.
absl::Status ReadAddedTokens(const Json& root, Vocab* vocab) {
  const auto it = root.find("added_tokens");
  if (it == root.end() || it->is_null()) return absl::OkStatus();
  if (!it->is_array()) return absl::InvalidArgumentError("tokenizer.json: added_tokens must be a list");
  for (const auto& added : *it) {
    if (!added.is_object() || !added.contains("id") || !added["id"].is_number_integer() ||
        !added.contains("content") || !added["content"].is_string()) {
      return absl::InvalidArgumentError(
          "tokenizer.json: each added_tokens entry needs an integer id and a string content");
    }
    const int64_t id = added["id"].get<int64_t>();
    if (id < 0 || id > (int64_t{1} << 24)) {
      return absl::InvalidArgumentError(absl::StrCat("tokenizer.json: added token id ", id));
    }
    if (id >= static_cast<int64_t>(vocab->tokens.size())) {
      vocab->tokens.resize(id + 1);
      vocab->token_types.resize(id + 1, kTokenUnused);
      if (!vocab->scores.empty()) vocab->scores.resize(id + 1, 0.0f);
    }
    vocab->tokens[id] = added["content"].get<std::string>();
    const bool special = added.value("special", false);
    vocab->token_types[id] = special ? kTokenControl : kTokenUserDefined;
  }
  return absl::OkStatus();
}

int32_t FindToken(const Vocab& vocab, std::string_view piece) {
  for (size_t i = 0; i < vocab.tokens.size(); ++i) {
    if (vocab.tokens[i] == piece) return static_cast<int32_t>(i);
  }
  return -1;
}

absl::StatusOr<std::unique_ptr<Tokenizer>> FromParsed(const Json& root) {
  if (!root.is_object()) return absl::InvalidArgumentError("tokenizer.json: not a JSON object");
  const auto model_it = root.find("model");
  if (model_it == root.end() || !model_it->is_object()) {
    return absl::InvalidArgumentError("tokenizer.json: missing \"model\" object");
  }
  const Json& model = *model_it;
  const std::string type = model.value("type", std::string());
  Vocab vocab;
  if (absl::Status s = ReadVocabMap(model, &vocab); !s.ok()) return s;
  vocab.token_types.assign(vocab.tokens.size(), kTokenNormal);
  const std::string unk = model.contains("unk_token") && model["unk_token"].is_string()
                              ? model["unk_token"].get<std::string>()
                              : std::string();

  if (type == "WordPiece") {
    const std::string prefix = model.value("continuing_subword_prefix", std::string("##"));
    if (prefix != "##") {
      return absl::UnimplementedError(absl::StrCat(
          "tokenizer.json: WordPiece continuing_subword_prefix \"", prefix, "\" (only ## is supported)"));
    }
    if (root.contains("normalizer") && root["normalizer"].is_object() &&
        root["normalizer"].value("lowercase", true) == false) {
      return absl::UnimplementedError("tokenizer.json: cased WordPiece (lowercase: false) is not supported");
    }
    vocab.kind = Vocab::Kind::kWordPiece;
    vocab.add_bos = false;
    vocab.add_space_prefix = false;
    if (absl::Status s = ReadAddedTokens(root, &vocab); !s.ok()) return s;
    if (!unk.empty()) vocab.unk = FindToken(vocab, unk);
    for (auto& t : vocab.token_types) {
      if (t == kTokenUnused) t = kTokenNormal;
    }
    return WordPieceTokenizer::Create(vocab);
  }
  if (type != "BPE") {
    return absl::UnimplementedError(absl::StrCat(
        "tokenizer.json: model type \"", type, "\" is not supported (WordPiece and BPE are)"));
  }
  if (HasComponent(root.value("pre_tokenizer", Json()), "ByteLevel") ||
      HasComponent(root.value("decoder", Json()), "ByteLevel")) {
    return absl::UnimplementedError(
        "tokenizer.json: the ByteLevel pre-tokenizer (GPT-2 style byte-level BPE) is not supported");
  }
  const Json pre = root.value("pre_tokenizer", Json());
  if (!pre.is_null() && !HasComponent(pre, "Metaspace")) {
    return absl::UnimplementedError(absl::StrCat("tokenizer.json: pre_tokenizer \"",
                                                 pre.value("type", std::string("?")),
                                                 "\" is not supported with BPE"));
  }
  vocab.kind = Vocab::Kind::kLlamaSpm;
  const Json normalizer = root.value("normalizer", Json());
  vocab.add_space_prefix = HasComponent(normalizer, "Prepend") || HasComponent(pre, "Metaspace");
  if (HasComponent(pre, "Metaspace")) {
    // Metaspace {"prepend_scheme": "never"} or {"add_prefix_space": false} adds no "▁".
    std::function<void(const Json&)> visit = [&](const Json& node) {
      if (node.is_object() && node.value("type", std::string()) == "Metaspace") {
        if (node.value("prepend_scheme", std::string()) == "never" ||
            node.value("add_prefix_space", true) == false) {
          vocab.add_space_prefix = false;
        }
      }
      if (node.is_object() || node.is_array()) {
        for (const auto& child : node) visit(child);
      }
    };
    visit(pre);
  }
  const auto merges_it = model.find("merges");
  if (merges_it == model.end() || !merges_it->is_array()) {
    return absl::InvalidArgumentError("tokenizer.json: BPE model needs a merges list");
  }
  for (const auto& merge : *merges_it) {
    if (merge.is_string()) {
      vocab.merges.push_back(merge.get<std::string>());
    } else if (merge.is_array() && merge.size() == 2 && merge[0].is_string() && merge[1].is_string()) {
      vocab.merges.push_back(absl::StrCat(merge[0].get<std::string>(), " ", merge[1].get<std::string>()));
    } else {
      return absl::InvalidArgumentError("tokenizer.json: a merge is neither \"a b\" nor [\"a\", \"b\"]");
    }
  }
  if (model.value("byte_fallback", false)) {
    for (size_t i = 0; i < vocab.tokens.size(); ++i) {
      if (tokenizer_internal::ParseBytePiece(vocab.tokens[i])) vocab.token_types[i] = kTokenByte;
    }
  }
  if (absl::Status s = ReadAddedTokens(root, &vocab); !s.ok()) return s;
  if (!unk.empty()) {
    vocab.unk = FindToken(vocab, unk);
    if (vocab.unk >= 0) vocab.token_types[vocab.unk] = kTokenUnknown;
  }
  vocab.bos = FindToken(vocab, "<s>");
  vocab.eos = FindToken(vocab, "</s>");
  // BOS is added when the post-processor's single template mentions it (Llama, Mistral).
  const Json post = root.value("post_processor", Json());
  vocab.add_bos = vocab.bos >= 0 && (post.is_null() || post.dump().find("\"<s>\"") != std::string::npos);
  return LlamaSpmTokenizer::Create(vocab, LlamaSpmTokenizer::MergeMode::kByRank);
}

}  // namespace

absl::StatusOr<std::unique_ptr<Tokenizer>> TokenizerFromHfJsonString(std::string_view json) {
  Json root;
  try {
    root = Json::parse(json.begin(), json.end());
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("tokenizer.json is not valid JSON: ", e.what()));
  }
  try {
    return FromParsed(root);
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("tokenizer.json has an unexpected shape: ", e.what()));
  }
}

absl::StatusOr<std::unique_ptr<Tokenizer>> TokenizerFromHfJson(std::string_view path) {
  const std::string p(path);
  struct stat st;
  if (::stat(p.c_str(), &st) != 0) {
    return absl::NotFoundError(absl::StrCat("tokenizer.json not found: ", p));
  }
  if (st.st_size > (int64_t{256} << 20)) {
    return absl::InvalidArgumentError(absl::StrCat("tokenizer.json is over 256 MiB: ", p));
  }
  std::ifstream in(p, std::ios::binary);
  if (!in) return absl::PermissionDeniedError(absl::StrCat("cannot read ", p));
  std::stringstream buffer;
  buffer << in.rdbuf();
  auto tokenizer = TokenizerFromHfJsonString(buffer.str());
  if (!tokenizer.ok()) {
    return absl::Status(tokenizer.status().code(),
                        absl::StrCat(p, ": ", tokenizer.status().message()));
  }
  return tokenizer;
}

}  // namespace tessera::engine
