#include "engine/text_stream.h"

#include <algorithm>

namespace tessera::engine {
namespace {

// Bytes in the UTF-8 sequence led by `c`, or 0 for a byte that cannot lead one.
int SequenceLength(unsigned char c) {
  if (c < 0x80) return 1;
  if (c >= 0xC2 && c <= 0xDF) return 2;
  if (c >= 0xE0 && c <= 0xEF) return 3;
  if (c >= 0xF0 && c <= 0xF4) return 4;
  return 0;
}

bool IsContinuation(unsigned char c) { return (c & 0xC0) == 0x80; }

}  // namespace

size_t CompleteUtf8Prefix(std::string_view s) {
  // Look at most 3 bytes back for a lead byte whose sequence is not finished yet.
  const size_t n = s.size();
  for (size_t back = 1; back <= 3 && back <= n; ++back) {
    const unsigned char c = static_cast<unsigned char>(s[n - back]);
    if (IsContinuation(c)) continue;
    const int len = SequenceLength(c);
    if (len > static_cast<int>(back)) {
      // Only wait if every byte after the lead is a continuation (it may still complete).
      bool ok = true;
      for (size_t i = n - back + 1; i < n; ++i) ok &= IsContinuation(static_cast<unsigned char>(s[i]));
      if (ok) return n - back;
    }
    return n;
  }
  return n;
}

std::string SanitizeUtf8(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  size_t i = 0;
  while (i < s.size()) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    const int len = SequenceLength(c);
    bool valid = len > 0 && i + len <= s.size();
    for (int k = 1; valid && k < len; ++k) valid = IsContinuation(static_cast<unsigned char>(s[i + k]));
    if (valid && len >= 3) {
      const unsigned char c1 = static_cast<unsigned char>(s[i + 1]);
      if (c == 0xE0 && c1 < 0xA0) valid = false;                // overlong
      if (c == 0xED && c1 >= 0xA0) valid = false;               // surrogates
      if (c == 0xF0 && c1 < 0x90) valid = false;                // overlong
      if (c == 0xF4 && c1 >= 0x90) valid = false;               // beyond U+10FFFF
    }
    if (valid) {
      out.append(s.substr(i, len));
      i += len;
    } else {
      out.append("\xEF\xBF\xBD");
      ++i;
    }
  }
  return out;
}

std::string TextStream::Push(std::string_view bytes) {
  if (stopped()) return "";
  pending_bytes_.append(bytes);
  const size_t cut = CompleteUtf8Prefix(pending_bytes_);
  held_ += SanitizeUtf8(std::string_view(pending_bytes_).substr(0, cut));
  pending_bytes_.erase(0, cut);
  // A stop string anywhere in the held text ends the stream at its earliest match.
  size_t best = std::string::npos;
  for (const std::string& s : stop_) {
    if (s.empty()) continue;
    const size_t at = held_.find(s);
    if (at != std::string::npos && (best == std::string::npos || at < best)) {
      best = at;
      matched_ = s;
    }
  }
  if (best != std::string::npos) {
    std::string out = held_.substr(0, best);
    held_.clear();
    pending_bytes_.clear();
    return out;
  }
  // Hold back the longest suffix that is a prefix of some stop string.
  size_t hold = 0;
  for (const std::string& s : stop_) {
    if (s.empty()) continue;
    for (size_t k = std::min(s.size() - 1, held_.size()); k > hold; --k) {
      if (held_.compare(held_.size() - k, k, s, 0, k) == 0) {
        hold = k;
        break;
      }
    }
  }
  std::string out = held_.substr(0, held_.size() - hold);
  held_.erase(0, held_.size() - hold);
  return out;
}

std::string TextStream::Flush() {
  if (stopped()) return "";
  std::string out = held_ + SanitizeUtf8(pending_bytes_);
  held_.clear();
  pending_bytes_.clear();
  return out;
}

}  // namespace tessera::engine
