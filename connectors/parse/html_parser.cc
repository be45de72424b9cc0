#include "connectors/parse/html_parser.h"

#include <gumbo.h>

#include <csetjmp>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "connectors/parse/charset.h"
#include "connectors/parse/document_builder.h"
#include "connectors/parse/utf8.h"

namespace tessera::parse {
namespace {

// ---------------------------------------------------------------------------
// GumboHeap: every allocation gumbo makes, in one intrusive list, so that a
// parse abandoned half-way can be freed without gumbo's help, plus the checks
// (memory cap, deadline) that decide to abandon it.

class GumboHeap {
 public:
  enum class Abort { kNone, kTooLarge, kDeadline, kOutOfMemory };

  GumboHeap(size_t limit, Clock* clock, absl::Time deadline)
      : limit_(limit), clock_(clock), deadline_(deadline) {
    sentinel_.prev = sentinel_.next = &sentinel_;
  }
  ~GumboHeap() { FreeAll(); }
  GumboHeap(const GumboHeap&) = delete;
  GumboHeap& operator=(const GumboHeap&) = delete;

  // Options that route gumbo's allocations through this heap.
  GumboOptions Options() {
    GumboOptions options = kGumboDefaultOptions;
    options.allocator = &GumboHeap::Allocate;
    options.deallocator = &GumboHeap::Deallocate;
    options.userdata = this;
    // Gumbo copies the stack of open elements into every recorded error,
    // which is quadratic on deeply nested input. We never read the errors.
    options.max_errors = 0;
    return options;
  }

  // Runs gumbo. Returns null if the parse was abandoned; abort() says why.
  //
  // The allocator leaves the parse with longjmp. That is well defined here:
  // the frames it unwinds are gumbo's (C, no destructors), Allocate's (only
  // trivially destructible locals) and this function's, which declares
  // nothing after setjmp. Everything gumbo allocated is on our list.
  GumboOutput* Parse(const GumboOptions& options, absl::string_view html) {
    std::jmp_buf escape;
    escape_ = &escape;
    if (setjmp(escape) != 0) return nullptr;
    return gumbo_parse_with_options(&options, html.data(), html.size());
  }

  Abort abort() const { return abort_; }
  size_t limit() const { return limit_; }

  // Frees every block still allocated. The parse tree becomes invalid.
  void FreeAll() {
    Block* b = sentinel_.next;
    while (b != &sentinel_) {
      Block* next = b->next;
      std::free(b);
      b = next;
    }
    sentinel_.prev = sentinel_.next = &sentinel_;
    live_bytes_ = 0;
  }

 private:
  // Header in front of each allocation; 32 bytes keeps malloc's alignment.
  struct Block {
    Block* prev;
    Block* next;
    size_t size;
    size_t unused;
  };
  static_assert(sizeof(Block) % alignof(std::max_align_t) == 0);

  // Checks the deadline every this many allocations (a clock read is cheap,
  // but not free).
  static constexpr uint32_t kDeadlineCheckInterval = 64;

  [[noreturn]] void Escape(Abort why) {
    abort_ = why;
    std::longjmp(*escape_, 1);
  }

  static void* Allocate(void* userdata, size_t size) {
    auto* heap = static_cast<GumboHeap*>(userdata);
    if (size > heap->limit_ - heap->live_bytes_) heap->Escape(Abort::kTooLarge);
    if (++heap->allocations_ % kDeadlineCheckInterval == 0 &&
        heap->clock_->Now() >= heap->deadline_) {
      heap->Escape(Abort::kDeadline);
    }
    auto* block = static_cast<Block*>(std::malloc(sizeof(Block) + size));
    if (block == nullptr) heap->Escape(Abort::kOutOfMemory);
    block->size = size;
    block->prev = &heap->sentinel_;
    block->next = heap->sentinel_.next;
    block->next->prev = block;
    heap->sentinel_.next = block;
    heap->live_bytes_ += size;
    return block + 1;
  }

  static void Deallocate(void* userdata, void* ptr) {
    if (ptr == nullptr) return;
    auto* heap = static_cast<GumboHeap*>(userdata);
    Block* block = static_cast<Block*>(ptr) - 1;
    block->prev->next = block->next;
    block->next->prev = block->prev;
    heap->live_bytes_ -= block->size;
    std::free(block);
  }

  const size_t limit_;
  Clock* const clock_;
  const absl::Time deadline_;
  Block sentinel_{};
  size_t live_bytes_ = 0;
  uint32_t allocations_ = 0;
  std::jmp_buf* escape_ = nullptr;
  Abort abort_ = Abort::kNone;
};

// ---------------------------------------------------------------------------
// Text extraction.

bool IsHtmlSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f'; }

// Text being built for one paragraph or heading, with HTML whitespace
// collapsing: a run of whitespace becomes one space, and none is emitted at
// the start of a line.
class TextSink {
 public:
  void AppendCollapsed(absl::string_view text) {
    for (size_t i = 0; i < text.size(); ++i) {
      const char c = text[i];
      if (IsHtmlSpace(c)) {
        pending_space_ = true;
        continue;
      }
      // U+00A0 NO-BREAK SPACE (&nbsp;) reads as a space.
      if (c == '\xC2' && i + 1 < text.size() && text[i + 1] == '\xA0') {
        pending_space_ = true;
        ++i;
        continue;
      }
      if (pending_space_ && AtWordBoundary()) text_.push_back(' ');
      pending_space_ = false;
      text_.push_back(c);
    }
  }
  void AppendVerbatim(absl::string_view text) {
    if (pending_space_ && AtWordBoundary() && !text.empty()) text_.push_back(' ');
    pending_space_ = false;
    text_.append(text.data(), text.size());
  }
  // A separator that replaces any pending space: "\n" (line break) or "\t".
  void AppendBreak(char c) {
    pending_space_ = false;
    while (!text_.empty() && text_.back() == ' ') text_.pop_back();
    text_.push_back(c);
  }
  void AppendSpace() { pending_space_ = true; }
  // Ends the current line; a line holding only blanks and tabs is removed.
  void EndLine() {
    pending_space_ = false;
    const size_t line_start = text_.rfind('\n') + 1;  // npos + 1 == 0
    if (text_.find_first_not_of(" \t", line_start) == std::string::npos) {
      text_.resize(line_start);
    } else {
      while (text_.back() == ' ' || text_.back() == '\t') text_.pop_back();
      text_.push_back('\n');
    }
  }
  bool AtLineStart() const { return text_.empty() || text_.back() == '\n'; }
  const std::string& text() const { return text_; }
  size_t size() const { return text_.size(); }
  std::string Take() {
    pending_space_ = false;
    return std::exchange(text_, {});
  }

 private:
  bool AtWordBoundary() const {
    return !text_.empty() && text_.back() != '\n' && text_.back() != '\t' && text_.back() != ' ';
  }
  std::string text_;
  bool pending_space_ = false;
};

bool IsSkipped(const GumboNode& node) {
  switch (node.v.element.tag) {
    case GUMBO_TAG_SCRIPT:
    case GUMBO_TAG_STYLE:
    case GUMBO_TAG_NOSCRIPT:
    case GUMBO_TAG_TEMPLATE:
    case GUMBO_TAG_IFRAME:
    case GUMBO_TAG_HEAD:   // the document <title> is read separately
    case GUMBO_TAG_TITLE:  // also an SVG tooltip: not visible text
      return true;
    default:
      return gumbo_get_attribute(&node.v.element.attributes, "hidden") != nullptr;
  }
}

bool IsBlock(GumboTag tag) {
  switch (tag) {
    case GUMBO_TAG_ADDRESS:
    case GUMBO_TAG_ARTICLE:
    case GUMBO_TAG_ASIDE:
    case GUMBO_TAG_BLOCKQUOTE:
    case GUMBO_TAG_BODY:
    case GUMBO_TAG_CAPTION:
    case GUMBO_TAG_CENTER:
    case GUMBO_TAG_DD:
    case GUMBO_TAG_DETAILS:
    case GUMBO_TAG_DIR:
    case GUMBO_TAG_DIV:
    case GUMBO_TAG_DL:
    case GUMBO_TAG_DT:
    case GUMBO_TAG_FIELDSET:
    case GUMBO_TAG_FIGCAPTION:
    case GUMBO_TAG_FIGURE:
    case GUMBO_TAG_FOOTER:
    case GUMBO_TAG_FORM:
    case GUMBO_TAG_FRAMESET:
    case GUMBO_TAG_HEADER:
    case GUMBO_TAG_HGROUP:
    case GUMBO_TAG_HR:
    case GUMBO_TAG_HTML:
    case GUMBO_TAG_LEGEND:
    case GUMBO_TAG_LI:
    case GUMBO_TAG_LISTING:
    case GUMBO_TAG_MAIN:
    case GUMBO_TAG_MENU:
    case GUMBO_TAG_NAV:
    case GUMBO_TAG_NOFRAMES:
    case GUMBO_TAG_OL:
    case GUMBO_TAG_OPTION:
    case GUMBO_TAG_P:
    case GUMBO_TAG_PLAINTEXT:
    case GUMBO_TAG_PRE:
    case GUMBO_TAG_SECTION:
    case GUMBO_TAG_SUMMARY:
    case GUMBO_TAG_TEXTAREA:
    case GUMBO_TAG_UL:
    case GUMBO_TAG_XMP:
      return true;
    default:
      return false;
  }
}

bool IsHeading(GumboTag tag) { return tag >= GUMBO_TAG_H1 && tag <= GUMBO_TAG_H6; }

bool IsPreformatted(GumboTag tag) {
  return tag == GUMBO_TAG_PRE || tag == GUMBO_TAG_TEXTAREA || tag == GUMBO_TAG_LISTING ||
         tag == GUMBO_TAG_XMP || tag == GUMBO_TAG_PLAINTEXT;
}

// Concatenated, collapsed text of the text nodes under `node` (for <title>).
std::string CollectText(const GumboNode* node) {
  TextSink sink;
  std::vector<const GumboNode*> stack = {node};
  while (!stack.empty()) {
    const GumboNode* n = stack.back();
    stack.pop_back();
    if (n->type == GUMBO_NODE_TEXT || n->type == GUMBO_NODE_WHITESPACE ||
        n->type == GUMBO_NODE_CDATA) {
      sink.AppendCollapsed(n->v.text.text);
    } else if (n->type == GUMBO_NODE_ELEMENT) {
      const GumboVector& children = n->v.element.children;
      for (unsigned i = children.length; i > 0; --i) {
        stack.push_back(static_cast<const GumboNode*>(children.data[i - 1]));
      }
    }
  }
  return sink.Take();
}

// Finds the first <title> in <head> (where the HTML5 tree builder puts it).
const GumboNode* FindTitle(const GumboNode* root) {
  if (root == nullptr || root->type != GUMBO_NODE_ELEMENT) return nullptr;
  const GumboVector& top = root->v.element.children;
  for (unsigned i = 0; i < top.length; ++i) {
    const auto* head = static_cast<const GumboNode*>(top.data[i]);
    if (head->type != GUMBO_NODE_ELEMENT || head->v.element.tag != GUMBO_TAG_HEAD) continue;
    const GumboVector& children = head->v.element.children;
    for (unsigned j = 0; j < children.length; ++j) {
      const auto* child = static_cast<const GumboNode*>(children.data[j]);
      if (child->type == GUMBO_NODE_ELEMENT && child->v.element.tag == GUMBO_TAG_TITLE) {
        return child;
      }
    }
  }
  return nullptr;
}

// Walks the tree in document order, feeding paragraphs and sections to the
// builder. Iterative (explicit stack), so any depth is safe.
class TextExtractor {
 public:
  explicit TextExtractor(DocumentBuilder& builder) : builder_(builder) {}

  absl::Status Run(const GumboNode* root) {
    struct Frame {
      const GumboNode* node;
      unsigned next_child;
    };
    std::vector<Frame> stack;
    RETURN_IF_ERROR(Enter(root, &stack));
    size_t visited = 0;
    while (!stack.empty()) {
      if (++visited % 4096 == 0) RETURN_IF_ERROR(builder_.CheckDeadline());
      Frame& frame = stack.back();
      const GumboVector& children = frame.node->v.element.children;
      if (frame.next_child < children.length) {
        const auto* child = static_cast<const GumboNode*>(children.data[frame.next_child++]);
        RETURN_IF_ERROR(Enter(child, &stack));  // may reallocate `stack`
        continue;
      }
      const GumboNode* node = frame.node;
      stack.pop_back();
      RETURN_IF_ERROR(Exit(*node));
    }
    return Flush();
  }

 private:
  TextSink& sink() { return in_heading_ > 0 ? heading_ : paragraph_; }

  // Handles a node on the way down; pushes elements whose children we want.
  template <typename Stack>
  absl::Status Enter(const GumboNode* node, Stack* stack) {
    switch (node->type) {
      case GUMBO_NODE_TEXT:
      case GUMBO_NODE_WHITESPACE:
      case GUMBO_NODE_CDATA:
        if (in_pre_ > 0) {
          sink().AppendVerbatim(node->v.text.text);
        } else {
          sink().AppendCollapsed(node->v.text.text);
        }
        return absl::OkStatus();
      case GUMBO_NODE_ELEMENT:
        break;
      default:  // document, comment, template contents
        return absl::OkStatus();
    }
    if (IsSkipped(*node)) return absl::OkStatus();
    const GumboTag tag = node->v.element.tag;
    if (tag == GUMBO_TAG_BR) {
      // Inside a table row or a heading a line break would split it: a space.
      sink().AppendBreak(table_depth_ > 0 || in_heading_ > 0 ? ' ' : '\n');
      return absl::OkStatus();
    }
    RETURN_IF_ERROR(Open(tag));
    stack->push_back({node, 0});
    return absl::OkStatus();
  }

  absl::Status Open(GumboTag tag) {
    if (IsHeading(tag) && table_depth_ == 0) {
      if (in_heading_++ == 0) RETURN_IF_ERROR(Flush());
      return absl::OkStatus();
    }
    if (IsPreformatted(tag)) ++in_pre_;
    switch (tag) {
      case GUMBO_TAG_TABLE:
        if (table_depth_++ == 0) return Flush();
        sink().AppendSpace();
        return absl::OkStatus();
      case GUMBO_TAG_TR:
        if (table_depth_ == 1) cells_in_row_ = 0;
        return absl::OkStatus();
      case GUMBO_TAG_TD:
      case GUMBO_TAG_TH:
        if (table_depth_ == 1 && cells_in_row_++ > 0) {
          sink().AppendBreak('\t');
        } else {
          sink().AppendSpace();
        }
        return absl::OkStatus();
      default:
        break;
    }
    return BlockBoundary(tag);
  }

  // Entering or leaving a block element ends the paragraph, except inside a
  // table or heading, where it only separates words.
  absl::Status BlockBoundary(GumboTag tag) {
    if (IsBlock(tag) || IsHeading(tag)) {
      if (table_depth_ > 0 || in_heading_ > 0) {
        sink().AppendSpace();
        return absl::OkStatus();
      }
      return Flush();
    }
    return absl::OkStatus();
  }

  absl::Status Exit(const GumboNode& node) {
    const GumboTag tag = node.v.element.tag;
    if (IsHeading(tag) && table_depth_ == 0 && in_heading_ > 0) {
      if (--in_heading_ == 0) {
        const std::string heading = heading_.Take();
        if (!absl::StripAsciiWhitespace(heading).empty()) {
          RETURN_IF_ERROR(builder_.StartSection(heading));
        }
      }
      return absl::OkStatus();
    }
    if (IsPreformatted(tag) && in_pre_ > 0) --in_pre_;
    switch (tag) {
      case GUMBO_TAG_TABLE:
        if (--table_depth_ == 0) return Flush();
        sink().AppendSpace();
        return absl::OkStatus();
      case GUMBO_TAG_TR:
        if (table_depth_ == 1) {
          sink().EndLine();
        } else {
          sink().AppendSpace();
        }
        return absl::OkStatus();
      default:
        break;
    }
    return BlockBoundary(tag);
  }

  absl::Status Flush() {
    if (paragraph_.size() == 0) return absl::OkStatus();
    return builder_.AddParagraph(paragraph_.Take());
  }

  DocumentBuilder& builder_;
  TextSink paragraph_;
  TextSink heading_;
  int in_heading_ = 0;
  int in_pre_ = 0;
  int table_depth_ = 0;
  int cells_in_row_ = 0;  // cells seen so far in the current top-level row
};

}  // namespace

absl::StatusOr<ParsedDocument> ParseHtml(absl::string_view bytes, const ParseOptions& options) {
  DocumentBuilder builder(options, kMimeHtml);
  RETURN_IF_ERROR(CheckInputSize(bytes.size(), options));
  // Markup is not output: only max_input_bytes bounds the decoded HTML (UTF-16
  // grows at most 1.5x); the builder bounds the extracted text.
  const std::string charset = options.charset.empty() ? HtmlMetaCharset(bytes) : options.charset;
  ASSIGN_OR_RETURN(DecodedText decoded,
                   DecodeText(bytes, charset, std::numeric_limits<size_t>::max()));
  for (std::string& w : decoded.warnings) builder.AddWarning(std::move(w));

  const size_t tree_limit = (size_t{64} << 20) + 8 * options.max_output_bytes;
  GumboHeap heap(tree_limit, builder.clock(), builder.deadline());
  const GumboOptions gumbo_options = heap.Options();
  const GumboOutput* output = heap.Parse(gumbo_options, decoded.text);
  switch (heap.abort()) {
    case GumboHeap::Abort::kNone:
      break;
    case GumboHeap::Abort::kDeadline:
      return builder.DeadlineExceeded();
    case GumboHeap::Abort::kTooLarge:
      return absl::ResourceExhaustedError(
          absl::StrCat("HTML parse tree exceeds ", heap.limit(), " bytes (from max_output_bytes)"));
    case GumboHeap::Abort::kOutOfMemory:
      return absl::ResourceExhaustedError("out of memory parsing HTML");
  }
  if (output == nullptr || output->root == nullptr) {
    return absl::InternalError("gumbo returned no parse tree");
  }
  if (const GumboNode* title = FindTitle(output->root)) builder.SetTitle(CollectText(title));
  TextExtractor extractor(builder);
  RETURN_IF_ERROR(extractor.Run(output->root));
  // `heap` frees the tree (gumbo_destroy_output would recurse per level).
  return std::move(builder).Finish();
}

}  // namespace tessera::parse
