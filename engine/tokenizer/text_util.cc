#include "engine/tokenizer/text_util.h"

#include <algorithm>
#include <unordered_set>

#include "common/utf8.h"

namespace tessera::engine::tokenizer_internal {

namespace {
constexpr char kReplacement[] = "\xEF\xBF\xBD";
}  // namespace

std::string SanitizeUtf8(std::string_view text) {
  if (IsValidUtf8(text)) return std::string(text);
  std::string out;
  out.reserve(text.size() + 8);
  const absl::string_view view(text.data(), text.size());
  for (size_t i = 0; i < text.size();) {
    int32_t cp;
    const size_t len = DecodeUtf8(view, i, &cp);
    if (cp < 0) {
      out += kReplacement;
    } else {
      out.append(text.data() + i, len);
    }
    i += len;
  }
  return out;
}

bool IsValidUtf8(std::string_view text) {
  const absl::string_view view(text.data(), text.size());
  for (size_t i = 0; i < text.size();) {
    if (static_cast<unsigned char>(text[i]) < 0x80) {
      ++i;
      continue;
    }
    int32_t cp;
    i += DecodeUtf8(view, i, &cp);
    if (cp < 0) return false;
  }
  return true;
}

void AppendUtf8(char32_t cp, std::string* out) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

std::u32string DecodeToCodePoints(std::string_view text) {
  std::u32string out;
  out.reserve(text.size());
  const absl::string_view view(text.data(), text.size());
  for (size_t i = 0; i < text.size();) {
    int32_t cp;
    i += DecodeUtf8(view, i, &cp);
    out.push_back(cp < 0 ? U'\uFFFD' : static_cast<char32_t>(cp));
  }
  return out;
}

std::optional<uint8_t> ParseBytePiece(std::string_view piece) {
  if (piece.size() != 6 || piece.substr(0, 3) != "<0x" || piece[5] != '>') return std::nullopt;
  int value = 0;
  for (size_t i = 3; i < 5; ++i) {
    const char c = piece[i];
    int digit;
    if (c >= '0' && c <= '9') {
      digit = c - '0';
    } else if (c >= 'A' && c <= 'F') {
      digit = c - 'A' + 10;
    } else if (c >= 'a' && c <= 'f') {
      digit = c - 'a' + 10;
    } else {
      return std::nullopt;
    }
    value = value * 16 + digit;
  }
  return static_cast<uint8_t>(value);
}

SpecialTokenSplitter::SpecialTokenSplitter(
    const std::vector<std::pair<std::string, int32_t>>& tokens) {
  std::unordered_set<std::string> seen;
  for (const auto& [text, id] : tokens) {
    if (text.empty() || !seen.insert(text).second) continue;
    by_first_byte_[static_cast<unsigned char>(text[0])].emplace_back(text, id);
  }
  for (auto& [byte, list] : by_first_byte_) {
    std::stable_sort(list.begin(), list.end(), [](const auto& a, const auto& b) {
      return a.first.size() > b.first.size();
    });
  }
}

std::vector<SpecialTokenSplitter::Segment> SpecialTokenSplitter::Split(
    std::string_view text) const {
  std::vector<Segment> out;
  size_t plain_start = 0;
  size_t i = 0;
  while (i < text.size()) {
    const auto it = by_first_byte_.find(static_cast<unsigned char>(text[i]));
    const std::pair<std::string, int32_t>* match = nullptr;
    if (it != by_first_byte_.end()) {
      for (const auto& candidate : it->second) {
        if (text.compare(i, candidate.first.size(), candidate.first) == 0) {
          match = &candidate;
          break;
        }
      }
    }
    if (match == nullptr) {
      ++i;
      continue;
    }
    if (i > plain_start) out.push_back({text.substr(plain_start, i - plain_start), -1});
    out.push_back({std::string_view(), match->second});
    i += match->first.size();
    plain_start = i;
  }
  if (text.size() > plain_start) out.push_back({text.substr(plain_start), -1});
  return out;
}

}  // namespace tessera::engine::tokenizer_internal
