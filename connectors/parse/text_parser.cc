#include "connectors/parse/text_parser.h"

#include <cstddef>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_join.h"
#include "common/status.h"
#include "connectors/parse/document_builder.h"
#include "connectors/parse/charset.h"
#include "connectors/parse/utf8.h"

namespace tessera::parse {
namespace {

// "\r\n" and lone "\r" become "\n".
std::string NormalizeLineEnds(std::string text) {
  if (text.find('\r') == std::string::npos) return text;
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\r') {
      out.push_back('\n');
      if (i + 1 < text.size() && text[i + 1] == '\n') ++i;
    } else {
      out.push_back(text[i]);
    }
  }
  return out;
}

// Decodes and normalises `bytes`, forwarding decoding warnings to `builder`.
absl::StatusOr<std::string> DecodeInput(absl::string_view bytes, DocumentBuilder& builder) {
  RETURN_IF_ERROR(CheckInputSize(bytes.size(), builder.options()));
  ASSIGN_OR_RETURN(DecodedText decoded,
                   DecodeText(bytes, builder.options().charset, builder.options().max_output_bytes));
  for (std::string& w : decoded.warnings) builder.AddWarning(std::move(w));
  return NormalizeLineEnds(std::move(decoded.text));
}

// Calls `fn(line)` for each line of `text` (without the "\n"), stopping at the
// first error.
template <typename Fn>
absl::Status ForEachLine(absl::string_view text, Fn fn) {
  while (!text.empty()) {
    const size_t end = text.find('\n');
    const absl::string_view line = text.substr(0, end);
    RETURN_IF_ERROR(fn(line));
    if (end == absl::string_view::npos) break;
    text.remove_prefix(end + 1);
  }
  return absl::OkStatus();
}

// Removes up to three leading spaces: Markdown block syntax may be indented
// that much; four spaces make an indented code line.
absl::string_view StripBlockIndent(absl::string_view line) {
  size_t i = 0;
  while (i < 3 && i < line.size() && line[i] == ' ') ++i;
  return line.substr(i);
}

// True for an ATX heading line; sets `*text` to the heading content.
bool ParseAtxHeading(absl::string_view line, absl::string_view* text) {
  size_t level = 0;
  while (level < line.size() && line[level] == '#') ++level;
  if (level == 0 || level > 6) return false;
  if (level < line.size() && line[level] != ' ' && line[level] != '\t') return false;
  absl::string_view rest = absl::StripAsciiWhitespace(line.substr(level));
  // Optional closing sequence: a run of '#' preceded by a space (or alone).
  size_t hashes = 0;
  while (hashes < rest.size() && rest[rest.size() - 1 - hashes] == '#') ++hashes;
  if (hashes == rest.size()) {
    rest = {};
  } else if (hashes > 0 &&
             (rest[rest.size() - 1 - hashes] == ' ' || rest[rest.size() - 1 - hashes] == '\t')) {
    rest = absl::StripTrailingAsciiWhitespace(rest.substr(0, rest.size() - hashes));
  }
  *text = rest;
  return true;
}

// True for an opening code fence; sets the fence character and length.
bool ParseFenceOpen(absl::string_view line, char* fence_char, size_t* fence_len) {
  if (line.empty() || (line[0] != '`' && line[0] != '~')) return false;
  const char c = line[0];
  size_t n = 0;
  while (n < line.size() && line[n] == c) ++n;
  if (n < 3) return false;
  // A backtick fence's info string may not contain backticks.
  if (c == '`' && line.substr(n).find('`') != absl::string_view::npos) return false;
  *fence_char = c;
  *fence_len = n;
  return true;
}

bool IsFenceClose(absl::string_view line, char fence_char, size_t fence_len) {
  line = StripBlockIndent(line);
  size_t n = 0;
  while (n < line.size() && line[n] == fence_char) ++n;
  return n >= fence_len && absl::StripAsciiWhitespace(line.substr(n)).empty();
}

// A line of only '=' (level 1) or of three or more '-' (level 2), after a
// paragraph, makes that paragraph a setext heading.
bool IsSetextUnderline(absl::string_view line) {
  line = absl::StripTrailingAsciiWhitespace(line);
  if (line.empty() || (line[0] != '=' && line[0] != '-')) return false;
  for (char c : line) {
    if (c != line[0]) return false;
  }
  return line[0] == '=' || line.size() >= 3;
}

// Three or more '*', '-' or '_' (spaces allowed between): <hr>.
bool IsThematicBreak(absl::string_view line) {
  char mark = 0;
  size_t count = 0;
  for (char c : line) {
    if (c == ' ' || c == '\t') continue;
    if (c != '*' && c != '-' && c != '_') return false;
    if (mark != 0 && c != mark) return false;
    mark = c;
    ++count;
  }
  return count >= 3;
}

// "[label]: destination ...": defines a reference link target, not text.
bool IsLinkReferenceDefinition(absl::string_view line) {
  if (line.empty() || line[0] != '[') return false;
  const size_t close = line.find("]:");
  return close != absl::string_view::npos && close > 1 &&
         line.substr(1, close - 1).find_first_of("[]") == absl::string_view::npos &&
         !absl::StripAsciiWhitespace(line.substr(close + 2)).empty();
}

}  // namespace

std::string StripMarkdownLinks(absl::string_view s) {
  if (s.find('[') == absl::string_view::npos) return std::string(s);
  constexpr size_t kNone = absl::string_view::npos;
  // Pass 1: match unescaped brackets and parentheses with two stacks.
  absl::flat_hash_map<size_t, size_t> bracket_close, paren_close;
  std::vector<size_t> brackets, parens;
  bool escaped = false;
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (escaped) {
      escaped = false;
    } else if (c == '\\') {
      escaped = true;
    } else if (c == '[') {
      brackets.push_back(i);
    } else if (c == ']' && !brackets.empty()) {
      bracket_close[brackets.back()] = i;
      brackets.pop_back();
    } else if (c == '(') {
      parens.push_back(i);
    } else if (c == ')' && !parens.empty()) {
      paren_close[parens.back()] = i;
      parens.pop_back();
    }
  }
  auto find = [](const absl::flat_hash_map<size_t, size_t>& m, size_t k) {
    auto it = m.find(k);
    return it == m.end() ? kNone : it->second;
  };
  // Pass 2: copy, dropping link syntax. When a link's "]" is reached, jump
  // past its "(url)" or "[ref]". Jumps nest like the links do.
  std::string out;
  out.reserve(s.size());
  std::vector<std::pair<size_t, size_t>> jumps;  // (at, to), innermost last
  size_t i = 0;
  while (i < s.size()) {
    while (!jumps.empty() && jumps.back().first < i) jumps.pop_back();  // overlapping, stale
    if (!jumps.empty() && jumps.back().first == i) {
      i = jumps.back().second;
      jumps.pop_back();
      continue;
    }
    const char c = s[i];
    if (c == '\\' && i + 1 < s.size()) {
      out.append(s.data() + i, 2);
      i += 2;
      continue;
    }
    const size_t open = (c == '!' && i + 1 < s.size() && s[i + 1] == '[') ? i + 1 : i;
    if (s[open] == '[') {
      const size_t close = find(bracket_close, open);
      if (close != kNone && close + 1 < s.size()) {
        size_t target_end = kNone;
        if (s[close + 1] == '(') target_end = find(paren_close, close + 1);
        if (s[close + 1] == '[') target_end = find(bracket_close, close + 1);
        if (target_end != kNone) {
          jumps.emplace_back(close, target_end + 1);
          i = open + 1;
          continue;
        }
      }
    }
    out.push_back(c);
    ++i;
  }
  return out;
}

absl::StatusOr<ParsedDocument> ParsePlainText(absl::string_view bytes,
                                              const ParseOptions& options) {
  DocumentBuilder builder(options, kMimePlainText);
  ASSIGN_OR_RETURN(const std::string text, DecodeInput(bytes, builder));
  std::string paragraph;
  RETURN_IF_ERROR(ForEachLine(text, [&](absl::string_view line) -> absl::Status {
    line = absl::StripTrailingAsciiWhitespace(line);
    if (line.empty()) {
      RETURN_IF_ERROR(builder.AddParagraph(paragraph));
      paragraph.clear();
      return absl::OkStatus();
    }
    if (!paragraph.empty()) paragraph.push_back('\n');
    paragraph.append(line.data(), line.size());
    if (paragraph.size() > options.max_output_bytes) {
      return builder.AddParagraph(paragraph);  // fails with RESOURCE_EXHAUSTED
    }
    return absl::OkStatus();
  }));
  RETURN_IF_ERROR(builder.AddParagraph(paragraph));
  return std::move(builder).Finish();
}

absl::StatusOr<ParsedDocument> ParseMarkdown(absl::string_view bytes, const ParseOptions& options) {
  DocumentBuilder builder(options, kMimeMarkdown);
  ASSIGN_OR_RETURN(const std::string text, DecodeInput(bytes, builder));

  std::vector<absl::string_view> paragraph;  // lines of the open paragraph
  std::string code;                          // body of the open code fence
  bool in_fence = false;
  char fence_char = 0;
  size_t fence_len = 0;

  auto flush_paragraph = [&]() -> absl::Status {
    if (paragraph.empty()) return absl::OkStatus();
    const std::string joined = absl::StrJoin(paragraph, "\n");
    paragraph.clear();
    return builder.AddParagraph(StripMarkdownLinks(joined));
  };

  RETURN_IF_ERROR(ForEachLine(text, [&](absl::string_view line) -> absl::Status {
    if (in_fence) {
      if (IsFenceClose(line, fence_char, fence_len)) {
        in_fence = false;
        RETURN_IF_ERROR(builder.AddParagraph(code));
        code.clear();
        return absl::OkStatus();
      }
      if (!code.empty()) code.push_back('\n');
      code.append(line.data(), line.size());
      if (code.size() > options.max_output_bytes) return builder.AddParagraph(code);
      return absl::OkStatus();
    }
    line = absl::StripTrailingAsciiWhitespace(line);
    const absl::string_view block = StripBlockIndent(line);
    absl::string_view heading;
    if (ParseFenceOpen(block, &fence_char, &fence_len)) {
      RETURN_IF_ERROR(flush_paragraph());
      in_fence = true;
      return absl::OkStatus();
    }
    if (ParseAtxHeading(block, &heading)) {
      RETURN_IF_ERROR(flush_paragraph());
      return builder.StartSection(StripMarkdownLinks(heading));
    }
    if (block.empty()) return flush_paragraph();
    if (!paragraph.empty() && IsSetextUnderline(block)) {
      const std::string joined = absl::StrJoin(paragraph, " ");
      paragraph.clear();
      return builder.StartSection(StripMarkdownLinks(joined));
    }
    if (IsThematicBreak(block)) return flush_paragraph();
    if (paragraph.empty() && IsLinkReferenceDefinition(block)) return absl::OkStatus();
    paragraph.push_back(line);
    return absl::OkStatus();
  }));
  if (in_fence) RETURN_IF_ERROR(builder.AddParagraph(code));  // unclosed fence
  RETURN_IF_ERROR(flush_paragraph());
  return std::move(builder).Finish();
}

}  // namespace tessera::parse
