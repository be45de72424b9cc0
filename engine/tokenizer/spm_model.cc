#include "engine/tokenizer/spm_model.h"

#include <sys/stat.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <functional>
#include <optional>
#include <queue>
#include <sstream>
#include <string>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/types/span.h"
#include "engine/tokenizer/text_util.h"

namespace tessera::engine {

namespace {

constexpr std::string_view kSpace = "\xE2\x96\x81";         // U+2581 "▁"
constexpr std::string_view kUnkSurface = " \xE2\x81\x87 ";  // " ⁇ ", as SentencePiece decodes <unk>

// ---------------------------------------------------------------------------------------------
// Protobuf wire format. Field numbers are those of sentencepiece_model.proto:
//   ModelProto      { repeated SentencePiece pieces = 1; TrainerSpec trainer_spec = 2;
//                     NormalizerSpec normalizer_spec = 3; NormalizerSpec denormalizer_spec = 5; }
//   SentencePiece   { string piece = 1; float score = 2; Type type = 3 [default = NORMAL]; }
//   TrainerSpec     { ModelType model_type = 3 [default = UNIGRAM];
//                     bool treat_whitespace_as_suffix = 24; bool byte_fallback = 35;
//                     string unk_piece = 45, bos_piece = 46, eos_piece = 47, pad_piece = 48; }
//   NormalizerSpec  { string name = 1; bytes precompiled_charsmap = 2;
//                     bool add_dummy_prefix = 3 [default = true];
//                     bool remove_extra_whitespaces = 4 [default = true];
//                     bool escape_whitespaces = 5 [default = true]; }
// (unk_id..pad_id = 40..43 only steer training; SentencePiece finds the special pieces by name.)

enum WireType { kVarint = 0, kFixed64 = 1, kLengthDelimited = 2, kFixed32 = 5 };

struct Field {
  uint32_t number = 0;
  int wire = 0;
  uint64_t varint = 0;     // kVarint
  uint32_t fixed32 = 0;    // kFixed32
  std::string_view bytes;  // kLengthDelimited
};

class WireReader {
 public:
  explicit WireReader(std::string_view data) : data_(data) {}

  bool done() const { return pos_ >= data_.size(); }

  // Reads the next field (tag and value); groups and bad wire types are errors.
  absl::Status Next(Field* field) {
    uint64_t tag = 0;
    if (!ReadVarint(&tag)) return Error("truncated or overlong field tag");
    if (tag >> 32 != 0 || (tag >> 3) == 0) return Error("invalid field number");
    field->number = static_cast<uint32_t>(tag >> 3);
    field->wire = static_cast<int>(tag & 7);
    switch (field->wire) {
      case kVarint:
        if (!ReadVarint(&field->varint)) return Error("truncated varint");
        return absl::OkStatus();
      case kFixed64:
        if (data_.size() - pos_ < 8) return Error("truncated fixed64");
        pos_ += 8;
        return absl::OkStatus();
      case kFixed32:
        if (data_.size() - pos_ < 4) return Error("truncated fixed32");
        std::memcpy(&field->fixed32, data_.data() + pos_, 4);  // little-endian hosts only
        pos_ += 4;
        return absl::OkStatus();
      case kLengthDelimited: {
        uint64_t length = 0;
        if (!ReadVarint(&length)) return Error("truncated length");
        if (length > data_.size() - pos_) {
          return Error(absl::StrCat("length ", length, " of field ", field->number,
                                    " runs past the end of its message"));
        }
        field->bytes = data_.substr(pos_, static_cast<size_t>(length));
        pos_ += static_cast<size_t>(length);
        return absl::OkStatus();
      }
      default:
        return Error(absl::StrCat("unsupported wire type ", field->wire, " for field ",
                                  field->number));
    }
  }

 private:
  bool ReadVarint(uint64_t* value) {
    uint64_t result = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (pos_ >= data_.size()) return false;
      const uint8_t byte = static_cast<uint8_t>(data_[pos_++]);
      result |= static_cast<uint64_t>(byte & 0x7F) << shift;
      if ((byte & 0x80) == 0) {
        *value = result;
        return true;
      }
    }
    return false;  // more than 10 bytes
  }

  absl::Status Error(std::string_view what) const {
    return absl::InvalidArgumentError(absl::StrCat(std::string(what), " at byte ", pos_));
  }

  std::string_view data_;
  size_t pos_ = 0;
};

// Calls fn(field) for each field of `message`; stops at the first error.
absl::Status ForEachField(std::string_view message, std::string_view what,
                          const std::function<absl::Status(const Field&)>& fn) {
  WireReader reader(message);
  Field field;
  while (!reader.done()) {
    if (absl::Status status = reader.Next(&field); !status.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(std::string(what), ": ", status.message()));
    }
    if (absl::Status status = fn(field); !status.ok()) return status;
  }
  return absl::OkStatus();
}

absl::Status WrongWire(std::string_view what, const Field& field) {
  return absl::InvalidArgumentError(
      absl::StrCat(std::string(what), ": field ", field.number, " has wire type ", field.wire));
}

struct RawPiece {
  std::string_view piece;
  float score = 0.0f;
  int64_t type = kTokenNormal;
};

struct RawTrainer {
  int64_t model_type = 1;  // UNIGRAM, the proto default
  bool treat_whitespace_as_suffix = false;
  bool byte_fallback = false;
  std::string unk_piece = "<unk>", bos_piece = "<s>", eos_piece = "</s>", pad_piece = "<pad>";
};

struct RawNormalizer {
  std::string name;
  size_t charsmap_size = 0;
  bool add_dummy_prefix = true;
  bool remove_extra_whitespaces = true;
  bool escape_whitespaces = true;
};

absl::Status ParsePiece(std::string_view message, RawPiece* out) {
  constexpr std::string_view kWhat = "SentencePiece";
  return ForEachField(message, kWhat, [&](const Field& f) -> absl::Status {
    switch (f.number) {
      case 1:
        if (f.wire != kLengthDelimited) return WrongWire(kWhat, f);
        out->piece = f.bytes;
        break;
      case 2:
        if (f.wire != kFixed32) return WrongWire(kWhat, f);
        std::memcpy(&out->score, &f.fixed32, 4);
        break;
      case 3:
        if (f.wire != kVarint) return WrongWire(kWhat, f);
        out->type = static_cast<int64_t>(f.varint);
        break;
      default:
        break;
    }
    return absl::OkStatus();
  });
}

absl::Status ParseTrainer(std::string_view message, RawTrainer* out) {
  constexpr std::string_view kWhat = "TrainerSpec";
  return ForEachField(message, kWhat, [&](const Field& f) -> absl::Status {
    auto varint = [&](auto* value) -> absl::Status {
      if (f.wire != kVarint) return WrongWire(kWhat, f);
      *value = static_cast<std::remove_pointer_t<decltype(value)>>(f.varint);
      return absl::OkStatus();
    };
    auto string = [&](std::string* value) -> absl::Status {
      if (f.wire != kLengthDelimited) return WrongWire(kWhat, f);
      value->assign(f.bytes);
      return absl::OkStatus();
    };
    switch (f.number) {
      case 3: return varint(&out->model_type);
      case 24: return varint(&out->treat_whitespace_as_suffix);
      case 35: return varint(&out->byte_fallback);
      case 45: return string(&out->unk_piece);
      case 46: return string(&out->bos_piece);
      case 47: return string(&out->eos_piece);
      case 48: return string(&out->pad_piece);
      default: return absl::OkStatus();
    }
  });
}

absl::Status ParseNormalizer(std::string_view message, std::string_view what, RawNormalizer* out) {
  return ForEachField(message, what, [&](const Field& f) -> absl::Status {
    auto flag = [&](bool* value) -> absl::Status {
      if (f.wire != kVarint) return WrongWire(what, f);
      *value = f.varint != 0;
      return absl::OkStatus();
    };
    switch (f.number) {
      case 1:
        if (f.wire != kLengthDelimited) return WrongWire(what, f);
        out->name.assign(f.bytes);
        return absl::OkStatus();
      case 2:
        if (f.wire != kLengthDelimited) return WrongWire(what, f);
        out->charsmap_size = f.bytes.size();
        return absl::OkStatus();
      case 3: return flag(&out->add_dummy_prefix);
      case 4: return flag(&out->remove_extra_whitespaces);
      case 5: return flag(&out->escape_whitespaces);
      default: return absl::OkStatus();
    }
  });
}

std::string_view ModelTypeName(int64_t type) {
  switch (type) {
    case 1: return "Unigram";
    case 2: return "BPE";
    case 3: return "word";
    case 4: return "char";
    default: return "unknown";
  }
}

// Longest-match lookup of a fixed set of strings (SentencePiece's user-defined pieces).
class PrefixMatcher {
 public:
  void Add(std::string_view text) {
    if (!text.empty()) by_first_byte_[static_cast<unsigned char>(text[0])].push_back(text);
  }
  void Finish() {
    for (auto& [byte, texts] : by_first_byte_) {
      std::stable_sort(texts.begin(), texts.end(),
                       [](std::string_view a, std::string_view b) { return a.size() > b.size(); });
    }
  }
  bool empty() const { return by_first_byte_.empty(); }
  // Length of the longest string that `text` starts with, 0 when none.
  size_t Match(std::string_view text) const {
    if (text.empty() || by_first_byte_.empty()) return 0;
    const auto it = by_first_byte_.find(static_cast<unsigned char>(text[0]));
    if (it == by_first_byte_.end()) return 0;
    for (const std::string_view candidate : it->second) {
      if (text.substr(0, candidate.size()) == candidate) return candidate.size();
    }
    return 0;
  }

 private:
  std::unordered_map<unsigned char, std::vector<std::string_view>> by_first_byte_;
};

// Length of one unit of input for SentencePiece: a user-defined piece, else one UTF-8 character.
size_t UnitLength(std::string_view text, const PrefixMatcher& user_defined) {
  if (const size_t n = user_defined.Match(text); n > 0) return n;
  return std::min(text.size(), tokenizer_internal::Utf8CharLength(static_cast<unsigned char>(text[0])));
}

std::string ReplaceSpaceMarks(std::string_view piece) {
  std::string out;
  out.reserve(piece.size());
  for (size_t i = 0; i < piece.size();) {
    if (piece.compare(i, kSpace.size(), kSpace) == 0) {
      out.push_back(' ');
      i += kSpace.size();
    } else {
      out.push_back(piece[i++]);
    }
  }
  return out;
}

class SentencePieceBpeTokenizer : public Tokenizer {
 public:
  explicit SentencePieceBpeTokenizer(SentencePieceModel model) : model_(std::move(model)) {
    const Vocab& vocab = model_.vocab;
    const int32_t size = vocab_size();
    byte_of_id_.assign(size, -1);
    std::vector<std::pair<std::string, int32_t>> controls;
    for (int32_t id = 0; id < size; ++id) {
      const std::string& piece = vocab.tokens[id];
      piece_to_id_.emplace(piece, id);
      const int32_t type = vocab.token_types[id];
      if (type == kTokenControl) controls.emplace_back(piece, id);
      if (type == kTokenUserDefined) user_defined_.Add(piece);
      if (type == kTokenByte) {
        if (auto byte = tokenizer_internal::ParseBytePiece(piece)) byte_of_id_[id] = *byte;
      }
    }
    user_defined_.Finish();
    control_splitter_ = tokenizer_internal::SpecialTokenSplitter(controls);
    for (int b = 0; b < 256; ++b) {
      const auto it = piece_to_id_.find(absl::StrFormat("<0x%02X>", b));
      byte_to_id_[b] = it == piece_to_id_.end() ? vocab.unk : it->second;
    }
    strip_leading_space_ = vocab.add_space_prefix || model_.remove_extra_whitespaces;
  }

  std::string_view kind() const override { return "sentencepiece"; }

  std::vector<int32_t> Encode(std::string_view text, bool add_special,
                              bool parse_special) const override {
    const std::string clean = tokenizer_internal::SanitizeUtf8(text);
    std::vector<int32_t> out;
    if (add_special && model_.vocab.bos >= 0) out.push_back(model_.vocab.bos);
    if (!parse_special || control_splitter_.empty()) {
      EncodeStretch(clean, &out);
    } else {
      for (const auto& segment : control_splitter_.Split(clean)) {
        if (segment.id >= 0) {
          out.push_back(segment.id);
        } else {
          EncodeStretch(segment.text, &out);
        }
      }
    }
    return out;
  }

  std::string TokenText(int32_t prev, int32_t id) const override {
    if (!InRange(id) || Type(id) == kTokenControl) return std::string();
    if (byte_of_id_[id] >= 0) return std::string(1, static_cast<char>(byte_of_id_[id]));
    if (Type(id) == kTokenUnknown) return std::string(kUnkSurface);
    std::string_view piece = model_.vocab.tokens[id];
    if (strip_leading_space_ && (prev < 0 || IsControl(prev)) &&
        piece.compare(0, kSpace.size(), kSpace) == 0) {
      piece.remove_prefix(kSpace.size());
    }
    return ReplaceSpaceMarks(piece);
  }

  std::string Decode(absl::Span<const int32_t> ids, bool keep_special) const override {
    std::string out;
    int32_t prev = -1;
    for (const int32_t id : ids) {
      if (!InRange(id)) continue;
      if (Type(id) == kTokenControl) {
        if (keep_special) out += model_.vocab.tokens[id];
      } else {
        out += TokenText(prev, id);
      }
      prev = id;
    }
    return tokenizer_internal::SanitizeUtf8(out);
  }

  int32_t vocab_size() const override { return static_cast<int32_t>(model_.vocab.tokens.size()); }
  std::optional<int32_t> TokenId(std::string_view piece) const override {
    const auto it = piece_to_id_.find(piece);
    if (it == piece_to_id_.end()) return std::nullopt;
    return it->second;
  }
  std::string Piece(int32_t id) const override {
    return InRange(id) ? model_.vocab.tokens[id] : std::string();
  }
  bool IsControl(int32_t id) const override { return InRange(id) && Type(id) == kTokenControl; }
  int32_t bos_id() const override { return model_.vocab.bos; }
  int32_t eos_id() const override { return model_.vocab.eos; }
  int32_t unk_id() const override { return model_.vocab.unk; }
  int32_t pad_id() const override { return model_.vocab.pad; }

 private:
  bool InRange(int32_t id) const { return id >= 0 && id < vocab_size(); }
  int32_t Type(int32_t id) const { return model_.vocab.token_types[id]; }
  // NORMAL, USER_DEFINED and UNUSED pieces take part in merges (SentencePiece's "pieces").
  bool Mergeable(int32_t id) const {
    const int32_t type = Type(id);
    return type == kTokenNormal || type == kTokenUserDefined || type == kTokenUnused;
  }

  // SentencePiece's normaliser with an identity character map: optional removal of leading,
  // trailing and repeated spaces, the dummy prefix, spaces escaped as "▁". User-defined pieces
  // pass through as units.
  std::string Normalize(std::string_view in) const {
    std::string out;
    const bool remove_extra = model_.remove_extra_whitespaces;
    if (remove_extra) {
      while (!in.empty()) {
        const size_t n = UnitLength(in, user_defined_);
        if (in.substr(0, n) != " ") break;
        in.remove_prefix(n);
      }
    }
    if (in.empty()) return out;
    out.reserve(in.size() + in.size() / 2 + kSpace.size());
    if (model_.vocab.add_space_prefix) out += kSpace;
    bool prev_space = remove_extra;
    while (!in.empty()) {
      const size_t n = UnitLength(in, user_defined_);
      std::string_view unit = in.substr(0, n);
      in.remove_prefix(n);
      while (prev_space && !unit.empty() && unit.front() == ' ') unit.remove_prefix(1);
      if (!unit.empty()) {
        for (const char c : unit) {
          if (c == ' ') {
            out += kSpace;
          } else {
            out.push_back(c);
          }
        }
        prev_space = unit.back() == ' ';
      }
      if (!remove_extra) prev_space = false;
    }
    if (remove_extra) {
      while (out.size() >= kSpace.size() &&
             std::string_view(out).substr(out.size() - kSpace.size()) == kSpace) {
        out.resize(out.size() - kSpace.size());
      }
    }
    return out;
  }

  // One stretch of text (no control pieces): normalise, then SentencePiece's BPE.
  void EncodeStretch(std::string_view text, std::vector<int32_t>* out) const {
    const std::string normalized = Normalize(text);
    if (normalized.empty()) return;
    const std::string_view norm(normalized);

    struct Symbol {
      size_t start;
      size_t length;
      int64_t prev;
      int64_t next;
      bool frozen;  // a user-defined piece: never merged
    };
    std::vector<Symbol> symbols;
    for (size_t pos = 0; pos < norm.size();) {
      size_t n = user_defined_.Match(norm.substr(pos));
      const bool frozen = n > 0;
      if (!frozen) {
        n = std::min(norm.size() - pos,
                     tokenizer_internal::Utf8CharLength(static_cast<unsigned char>(norm[pos])));
      }
      const int64_t index = static_cast<int64_t>(symbols.size());
      symbols.push_back({pos, n, index - 1, index + 1, frozen});
      pos += n;
    }
    symbols.back().next = -1;

    struct Pair {
      float score;
      int64_t left;
      int64_t right;
      size_t size;
    };
    auto worse = [](const Pair& a, const Pair& b) {
      return a.score < b.score || (a.score == b.score && a.left > b.left);
    };
    std::priority_queue<Pair, std::vector<Pair>, decltype(worse)> agenda(worse);
    // For pairs that fuse into an unused piece: how to split it again (the last pair seen wins).
    std::unordered_map<std::string_view, std::pair<std::string_view, std::string_view>> rev_merge;
    auto view = [&](const Symbol& s) { return norm.substr(s.start, s.length); };
    auto maybe_add = [&](int64_t left, int64_t right) {
      if (left < 0 || right < 0 || symbols[left].frozen || symbols[right].frozen) return;
      const std::string_view joined =
          norm.substr(symbols[left].start, symbols[left].length + symbols[right].length);
      const auto it = piece_to_id_.find(joined);
      if (it == piece_to_id_.end() || !Mergeable(it->second)) return;
      agenda.push({model_.vocab.scores[it->second], left, right, joined.size()});
      if (Type(it->second) == kTokenUnused) {
        rev_merge[joined] = {view(symbols[left]), view(symbols[right])};
      }
    };
    for (size_t i = 1; i < symbols.size(); ++i) {
      maybe_add(static_cast<int64_t>(i) - 1, static_cast<int64_t>(i));
    }
    while (!agenda.empty()) {
      const Pair top = agenda.top();
      agenda.pop();
      Symbol& left = symbols[top.left];
      Symbol& right = symbols[top.right];
      if (left.length == 0 || right.length == 0 || left.length + right.length != top.size) {
        continue;  // stale
      }
      left.length += right.length;
      right.length = 0;
      left.next = right.next;
      if (right.next >= 0) symbols[right.next].prev = top.left;
      maybe_add(left.prev, top.left);
      maybe_add(top.left, left.next);
    }

    const size_t stretch_start = out->size();
    std::function<void(std::string_view)> resegment = [&](std::string_view piece) {
      const auto it = piece_to_id_.find(piece);
      const int32_t id = it == piece_to_id_.end() ? model_.vocab.unk : it->second;
      if (Type(id) == kTokenUnused) {
        const auto split = rev_merge.find(piece);
        if (split != rev_merge.end()) {
          resegment(split->second.first);
          resegment(split->second.second);
          return;
        }
      }
      if (Type(id) == kTokenUnknown && model_.byte_fallback) {
        for (const char c : piece) out->push_back(byte_to_id_[static_cast<unsigned char>(c)]);
      } else if (Type(id) == kTokenUnknown && out->size() > stretch_start &&
                 out->back() == id) {
        // SentencePiece emits one unknown piece for a run of unknown symbols.
      } else {
        out->push_back(id);
      }
    };
    for (int64_t i = 0; i >= 0; i = symbols[i].next) resegment(view(symbols[i]));
  }

  SentencePieceModel model_;
  std::unordered_map<std::string_view, int32_t> piece_to_id_;  // keys point into model_
  std::vector<int16_t> byte_of_id_;                            // -1 unless a BYTE piece
  std::array<int32_t, 256> byte_to_id_;                        // "<0xXX>", else unk
  PrefixMatcher user_defined_;                                 // views into model_
  tokenizer_internal::SpecialTokenSplitter control_splitter_;
  bool strip_leading_space_ = true;
};

}  // namespace

absl::StatusOr<SentencePieceModel> ParseSentencePieceModel(std::string_view bytes) {
  std::vector<RawPiece> pieces;
  RawTrainer trainer;
  bool has_trainer = false;
  RawNormalizer normalizer;
  RawNormalizer denormalizer;
  // Repeated occurrences of a sub-message merge, as in protobuf.
  absl::Status status = ForEachField(bytes, "ModelProto", [&](const Field& f) -> absl::Status {
    if (f.number == 1 || f.number == 2 || f.number == 3 || f.number == 5) {
      if (f.wire != kLengthDelimited) return WrongWire("ModelProto", f);
    }
    switch (f.number) {
      case 1: {
        RawPiece piece;
        if (absl::Status s = ParsePiece(f.bytes, &piece); !s.ok()) {
          return absl::InvalidArgumentError(absl::StrCat("piece ", pieces.size(), ": ", s.message()));
        }
        pieces.push_back(piece);
        return absl::OkStatus();
      }
      case 2:
        has_trainer = true;
        return ParseTrainer(f.bytes, &trainer);
      case 3: return ParseNormalizer(f.bytes, "NormalizerSpec", &normalizer);
      case 5: return ParseNormalizer(f.bytes, "denormalizer NormalizerSpec", &denormalizer);
      default: return absl::OkStatus();
    }
  });
  if (!status.ok()) {
    return absl::Status(status.code(),
                        absl::StrCat("malformed SentencePiece model: ", status.message()));
  }
  if (pieces.empty()) return absl::InvalidArgumentError("SentencePiece model has no pieces");
  if (!has_trainer) return absl::InvalidArgumentError("SentencePiece model has no trainer_spec");
  if (trainer.model_type != 2) {
    return absl::UnimplementedError(absl::StrCat(
        "SentencePiece ", std::string(ModelTypeName(trainer.model_type)), " models (model_type ",
        trainer.model_type, ") are not supported; only BPE models are"));
  }
  if (normalizer.charsmap_size > 0 || !(normalizer.name.empty() || normalizer.name == "identity")) {
    return absl::UnimplementedError(absl::StrCat(
        "SentencePiece normaliser \"", normalizer.name, "\" (",
        normalizer.charsmap_size, "-byte character map) is not supported; only \"identity\" is"));
  }
  if (denormalizer.charsmap_size > 0) {
    return absl::UnimplementedError("SentencePiece denormaliser rules are not supported");
  }
  if (!normalizer.escape_whitespaces) {
    return absl::UnimplementedError("SentencePiece escape_whitespaces = false is not supported");
  }
  if (trainer.treat_whitespace_as_suffix) {
    return absl::UnimplementedError(
        "SentencePiece treat_whitespace_as_suffix = true is not supported");
  }
  if (pieces.size() > static_cast<size_t>(INT32_MAX)) {
    return absl::InvalidArgumentError("SentencePiece model has too many pieces");
  }

  SentencePieceModel model;
  model.remove_extra_whitespaces = normalizer.remove_extra_whitespaces;
  model.byte_fallback = trainer.byte_fallback;
  Vocab& vocab = model.vocab;
  vocab.kind = Vocab::Kind::kLlamaSpm;
  vocab.add_bos = true;
  vocab.add_eos = false;
  vocab.add_space_prefix = normalizer.add_dummy_prefix;
  vocab.tokens.reserve(pieces.size());
  vocab.scores.reserve(pieces.size());
  vocab.token_types.reserve(pieces.size());
  std::unordered_map<std::string_view, int32_t> ids;
  for (size_t i = 0; i < pieces.size(); ++i) {
    const RawPiece& piece = pieces[i];
    if (piece.type < kTokenNormal || piece.type > kTokenByte) {
      return absl::InvalidArgumentError(
          absl::StrCat("SentencePiece piece ", i, " has unknown type ", piece.type));
    }
    if (std::isnan(piece.score)) {
      return absl::InvalidArgumentError(absl::StrCat("SentencePiece piece ", i, " has a NaN score"));
    }
    if (piece.piece.empty()) {
      return absl::InvalidArgumentError(absl::StrCat("SentencePiece piece ", i, " is empty"));
    }
    if (!ids.emplace(piece.piece, static_cast<int32_t>(i)).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("SentencePiece piece ", i, " (\"", std::string(piece.piece), "\") is a duplicate"));
    }
    if (piece.type == kTokenUnknown) {
      if (vocab.unk >= 0) {
        return absl::InvalidArgumentError("SentencePiece model has more than one unknown piece");
      }
      vocab.unk = static_cast<int32_t>(i);
    }
    vocab.tokens.emplace_back(piece.piece);
    vocab.scores.push_back(piece.score);
    vocab.token_types.push_back(static_cast<int32_t>(piece.type));
  }
  if (vocab.unk < 0) return absl::InvalidArgumentError("SentencePiece model has no unknown piece");
  if (model.byte_fallback) {
    std::array<bool, 256> seen{};
    int count = 0;
    for (size_t i = 0; i < vocab.tokens.size(); ++i) {
      if (vocab.token_types[i] != kTokenByte) continue;
      const auto byte = tokenizer_internal::ParseBytePiece(vocab.tokens[i]);
      if (byte && !seen[*byte]) {
        seen[*byte] = true;
        ++count;
      }
    }
    if (count != 256) {
      return absl::InvalidArgumentError(absl::StrCat(
          "SentencePiece model has byte_fallback but ", count, " of the 256 byte pieces"));
    }
  }
  // As SentencePiece: the special pieces are found by name, and count only as control pieces.
  auto control = [&](const std::string& name) -> int32_t {
    const auto it = ids.find(name);
    if (it == ids.end() || vocab.token_types[it->second] != kTokenControl) return -1;
    return it->second;
  };
  vocab.bos = control(trainer.bos_piece);
  vocab.eos = control(trainer.eos_piece);
  vocab.pad = control(trainer.pad_piece);
  if (absl::Status valid = ValidateVocab(vocab); !valid.ok()) return valid;
  return model;
}

absl::StatusOr<Vocab> VocabFromSentencePieceModel(std::string_view bytes) {
  absl::StatusOr<SentencePieceModel> model = ParseSentencePieceModel(bytes);
  if (!model.ok()) return model.status();
  return std::move(model->vocab);
}

absl::StatusOr<std::unique_ptr<Tokenizer>> SentencePieceModelTokenizer(std::string_view bytes) {
  absl::StatusOr<SentencePieceModel> model = ParseSentencePieceModel(bytes);
  if (!model.ok()) return model.status();
  return std::unique_ptr<Tokenizer>(new SentencePieceBpeTokenizer(std::move(*model)));
}

absl::StatusOr<std::unique_ptr<Tokenizer>> LoadSentencePieceModel(std::string_view path) {
  const std::string p(path);
  struct stat st;
  if (::stat(p.c_str(), &st) != 0) {
    return absl::NotFoundError(absl::StrCat("SentencePiece model not found: ", p));
  }
  if (!S_ISREG(st.st_mode)) {
    return absl::InvalidArgumentError(absl::StrCat("not a SentencePiece model file: ", p));
  }
  std::ifstream in(p, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  if (!in.good() && !in.eof()) {
    return absl::UnavailableError(absl::StrCat("cannot read SentencePiece model ", p));
  }
  absl::StatusOr<std::unique_ptr<Tokenizer>> tokenizer = SentencePieceModelTokenizer(buffer.str());
  if (!tokenizer.ok()) {
    return absl::Status(tokenizer.status().code(),
                        absl::StrCat(p, ": ", tokenizer.status().message()));
  }
  return tokenizer;
}

}  // namespace tessera::engine
