// Must not include any Abseil header: see sentencepiece_adapter.h.
#include "engine/tokenizer/sentencepiece_adapter.h"

#include <sentencepiece_processor.h>

#include <exception>

namespace tessera::engine::tokenizer_internal {

SentencePieceAdapter::SentencePieceAdapter()
    : processor_(std::make_unique<sentencepiece::SentencePieceProcessor>()) {}

SentencePieceAdapter::~SentencePieceAdapter() = default;

std::string SentencePieceAdapter::LoadFile(const std::string& path) {
  try {
    const auto status = processor_->Load(path);
    return status.ok() ? std::string() : status.ToString();
  } catch (const std::exception& e) {
    return e.what();
  }
}

std::string SentencePieceAdapter::LoadSerialized(std::string_view bytes) {
  try {
    const auto status = processor_->LoadFromSerializedProto(bytes);
    return status.ok() ? std::string() : status.ToString();
  } catch (const std::exception& e) {
    return e.what();
  }
}

int SentencePieceAdapter::size() const { return processor_->GetPieceSize(); }
const std::string& SentencePieceAdapter::piece(int id) const { return processor_->IdToPiece(id); }
bool SentencePieceAdapter::is_control(int id) const { return processor_->IsControl(id); }
bool SentencePieceAdapter::is_unknown(int id) const { return processor_->IsUnknown(id); }
bool SentencePieceAdapter::is_byte(int id) const { return processor_->IsByte(id); }
int SentencePieceAdapter::piece_to_id(std::string_view piece) const {
  return processor_->PieceToId(piece);
}
int SentencePieceAdapter::bos_id() const { return processor_->bos_id(); }
int SentencePieceAdapter::eos_id() const { return processor_->eos_id(); }
int SentencePieceAdapter::unk_id() const { return processor_->unk_id(); }
int SentencePieceAdapter::pad_id() const { return processor_->pad_id(); }

std::string SentencePieceAdapter::Encode(std::string_view text, std::vector<int>* ids) const {
  try {
    const auto status = processor_->Encode(text, ids);
    return status.ok() ? std::string() : status.ToString();
  } catch (const std::exception& e) {
    return e.what();
  }
}

std::string SentencePieceAdapter::DecodeIds(const std::vector<int>& ids) const {
  try {
    return processor_->DecodeIds(ids);
  } catch (const std::exception&) {
    return std::string();
  }
}

}  // namespace tessera::engine::tokenizer_internal
