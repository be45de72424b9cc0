#include "engine/tokenizer/sentencepiece_tokenizer.h"

#include <sys/stat.h>

#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace tessera::engine {

namespace {

using tokenizer_internal::SentencePieceAdapter;

constexpr std::string_view kSpace = "\xE2\x96\x81";         // U+2581 "▁"
constexpr std::string_view kUnkSurface = " \xE2\x81\x87 ";  // " ⁇ ", as SentencePiece decodes <unk>

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

}  // namespace

absl::StatusOr<std::unique_ptr<Tokenizer>> SentencePieceTokenizer::Load(std::string_view path) {
  const std::string p(path);
  struct stat st;
  if (::stat(p.c_str(), &st) != 0) {
    return absl::NotFoundError(absl::StrCat("SentencePiece model not found: ", p));
  }
  auto sp = std::make_unique<SentencePieceAdapter>();
  if (std::string error = sp->LoadFile(p); !error.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot load SentencePiece model ", p, ": ", error));
  }
  return std::unique_ptr<Tokenizer>(new SentencePieceTokenizer(std::move(sp)));
}

absl::StatusOr<std::unique_ptr<Tokenizer>> SentencePieceTokenizer::FromSerialized(
    std::string_view bytes) {
  auto sp = std::make_unique<SentencePieceAdapter>();
  if (std::string error = sp->LoadSerialized(bytes); !error.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("not a serialized SentencePiece model: ", error));
  }
  if (sp->size() <= 0) return absl::InvalidArgumentError("SentencePiece model has no pieces");
  return std::unique_ptr<Tokenizer>(new SentencePieceTokenizer(std::move(sp)));
}

SentencePieceTokenizer::SentencePieceTokenizer(std::unique_ptr<SentencePieceAdapter> sp)
    : sp_(std::move(sp)),
      size_(sp_->size()),
      bos_(sp_->bos_id()),
      eos_(sp_->eos_id()),
      unk_(sp_->unk_id()),
      pad_(sp_->pad_id()) {
  if (!InRange(bos_)) bos_ = -1;
  if (!InRange(eos_)) eos_ = -1;
  if (!InRange(unk_)) unk_ = -1;
  if (!InRange(pad_)) pad_ = -1;
  byte_of_id_.assign(size_, -1);
  std::vector<std::pair<std::string, int32_t>> controls;
  int32_t spaced_piece = -1;
  for (int32_t id = 0; id < size_; ++id) {
    const std::string& piece = sp_->piece(id);
    if (sp_->is_control(id)) controls.emplace_back(piece, id);
    if (sp_->is_byte(id)) {
      if (auto byte = tokenizer_internal::ParseBytePiece(piece)) byte_of_id_[id] = *byte;
    }
    if (spaced_piece < 0 && !sp_->is_control(id) && !sp_->is_byte(id) && !sp_->is_unknown(id) &&
        piece.size() > kSpace.size() && piece.compare(0, kSpace.size(), kSpace) == 0 &&
        piece.find(kSpace, kSpace.size()) == std::string::npos &&
        piece.find(' ') == std::string::npos) {
      spaced_piece = id;
    }
  }
  control_splitter_ = tokenizer_internal::SpecialTokenSplitter(controls);
  // SentencePiece drops the leading "▁" of the first piece only when the model normalises with a
  // dummy prefix or removes extra whitespace; ask it rather than parse the normaliser spec.
  if (spaced_piece >= 0) {
    const std::string decoded = sp_->DecodeIds({spaced_piece});
    strip_leading_space_ = decoded == sp_->piece(spaced_piece).substr(kSpace.size());
  }
}

std::vector<int32_t> SentencePieceTokenizer::Encode(std::string_view text, bool add_special,
                                                    bool parse_special) const {
  const std::string clean = tokenizer_internal::SanitizeUtf8(text);
  std::vector<int32_t> out;
  if (add_special && bos_ >= 0) out.push_back(bos_);
  auto encode_plain = [&](std::string_view segment) {
    std::vector<int> ids;
    if (!sp_->Encode(segment, &ids).empty()) {
      // SentencePiece only fails on an unloaded model, which the factories rule out.
      if (unk_ >= 0) out.push_back(unk_);
      return;
    }
    out.insert(out.end(), ids.begin(), ids.end());
  };
  if (!parse_special || control_splitter_.empty()) {
    encode_plain(clean);
  } else {
    for (const auto& segment : control_splitter_.Split(clean)) {
      if (segment.id >= 0) {
        out.push_back(segment.id);
      } else {
        encode_plain(segment.text);
      }
    }
  }
  return out;
}

std::string SentencePieceTokenizer::TokenText(int32_t prev, int32_t id) const {
  if (!InRange(id) || sp_->is_control(id)) return std::string();
  if (byte_of_id_[id] >= 0) return std::string(1, static_cast<char>(byte_of_id_[id]));
  if (sp_->is_unknown(id)) return std::string(kUnkSurface);
  std::string_view piece = sp_->piece(id);
  if (strip_leading_space_ && (prev < 0 || IsControl(prev)) &&
      piece.compare(0, kSpace.size(), kSpace) == 0) {
    piece.remove_prefix(kSpace.size());
  }
  return ReplaceSpaceMarks(piece);
}

std::string SentencePieceTokenizer::Decode(absl::Span<const int32_t> ids,
                                           bool keep_special) const {
  std::string out;
  int32_t prev = -1;
  for (const int32_t id : ids) {
    if (!InRange(id)) continue;
    if (sp_->is_control(id)) {
      if (keep_special) out += sp_->piece(id);
    } else {
      out += TokenText(prev, id);
    }
    prev = id;
  }
  return tokenizer_internal::SanitizeUtf8(out);
}

std::optional<int32_t> SentencePieceTokenizer::TokenId(std::string_view piece) const {
  const int id = sp_->piece_to_id(piece);
  if (!InRange(id)) return std::nullopt;
  if (id == unk_ && sp_->piece(id) != piece) return std::nullopt;
  return id;
}

std::string SentencePieceTokenizer::Piece(int32_t id) const {
  return InRange(id) ? sp_->piece(id) : std::string();
}

bool SentencePieceTokenizer::IsControl(int32_t id) const {
  return InRange(id) && sp_->is_control(id);
}

}  // namespace tessera::engine
