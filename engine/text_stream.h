// Turns the raw bytes of generated tokens into text events: only whole UTF-8 characters leave
// (a multi-byte character split across tokens waits for its last byte; bytes that can never
// form a character become U+FFFD), and text that might be the start of a stop string is held
// back until it is known not to be one. When a stop string appears, the text before it is
// released and the stream reports which string matched.
#ifndef TESSERA_ENGINE_TEXT_STREAM_H_
#define TESSERA_ENGINE_TEXT_STREAM_H_

#include <string>
#include <string_view>
#include <vector>

namespace tessera::engine {

class TextStream {
 public:
  explicit TextStream(std::vector<std::string> stop) : stop_(std::move(stop)) {}

  // Adds bytes; returns the text that may be shown now (possibly empty). After a stop string
  // matched, returns "" and stopped() is true.
  std::string Push(std::string_view bytes);
  // The end of generation: whatever is held back (an incomplete character becomes U+FFFD).
  std::string Flush();

  bool stopped() const { return !matched_.empty(); }
  const std::string& matched_stop() const { return matched_; }

 private:
  std::vector<std::string> stop_;
  std::string pending_bytes_;  // an incomplete UTF-8 sequence at the end
  std::string held_;           // whole characters held back for stop matching
  std::string matched_;
};

// The length of the longest prefix of `s` made of whole UTF-8 sequences (or invalid bytes that
// cannot become valid by appending), i.e. where a streamed cut is safe.
size_t CompleteUtf8Prefix(std::string_view s);
// `s` with every invalid UTF-8 sequence replaced by U+FFFD.
std::string SanitizeUtf8(std::string_view s);

}  // namespace tessera::engine

#endif  // TESSERA_ENGINE_TEXT_STREAM_H_
