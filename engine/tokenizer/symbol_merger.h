// MergeSymbols: the merge loop shared by the SentencePiece-style (merge by score) and BPE (merge
// by rank) tokenizers. The text starts as one symbol per UTF-8 character (or per given unit);
// repeatedly the adjacent pair with the best priority is fused (ties: leftmost first) until no
// pair qualifies. A priority queue with lazy invalidation keeps it O(n log n), so a megabyte of
// text without spaces is as cheap as a megabyte of words. Internal to engine/tokenizer/.
#ifndef TESSERA_ENGINE_TOKENIZER_SYMBOL_MERGER_H_
#define TESSERA_ENGINE_TOKENIZER_SYMBOL_MERGER_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <queue>
#include <string_view>
#include <utility>
#include <vector>

#include "engine/tokenizer/text_util.h"

namespace tessera::engine::tokenizer_internal {

// A final symbol: text.substr(start, length).
struct MergedSymbol {
  size_t start;
  size_t length;
};

// `priority(left, right)` returns the priority of fusing the two adjacent pieces (higher wins) or
// nullopt when they may not fuse. Returns the final symbols in order.
template <typename PriorityFn>
std::vector<MergedSymbol> MergeSymbols(std::string_view text, const PriorityFn& priority) {
  struct Symbol {
    size_t start;
    size_t length;
    int64_t prev;
    int64_t next;
  };
  std::vector<Symbol> symbols;
  symbols.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    size_t len = Utf8CharLength(static_cast<unsigned char>(text[i]));
    if (i + len > text.size()) len = text.size() - i;
    const int64_t index = static_cast<int64_t>(symbols.size());
    symbols.push_back({i, len, index - 1, index + 1});
    i += len;
  }
  if (!symbols.empty()) symbols.back().next = -1;

  struct Candidate {
    double priority;
    int64_t left;
    size_t length;  // combined length when queued; a mismatch later means the entry is stale
    bool operator<(const Candidate& other) const {
      if (priority != other.priority) return priority < other.priority;
      return left > other.left;  // leftmost first
    }
  };
  std::priority_queue<Candidate> queue;
  auto try_add = [&](int64_t left) {
    if (left < 0) return;
    const int64_t right = symbols[left].next;
    if (right < 0) return;
    const Symbol& l = symbols[left];
    const Symbol& r = symbols[right];
    const std::optional<double> p =
        priority(text.substr(l.start, l.length), text.substr(r.start, r.length));
    if (p.has_value()) queue.push({*p, left, l.length + r.length});
  };
  for (int64_t i = 0; i + 1 < static_cast<int64_t>(symbols.size()); ++i) try_add(i);

  while (!queue.empty()) {
    const Candidate top = queue.top();
    queue.pop();
    Symbol& left = symbols[top.left];
    if (left.length == 0 || left.next < 0) continue;
    Symbol& right = symbols[left.next];
    if (left.length + right.length != top.length) continue;  // stale
    left.length += right.length;
    right.length = 0;
    left.next = right.next;
    if (left.next >= 0) symbols[left.next].prev = top.left;
    try_add(left.prev);
    try_add(top.left);
  }

  std::vector<MergedSymbol> out;
  for (int64_t i = symbols.empty() ? -1 : 0; i >= 0; i = symbols[i].next) {
    out.push_back({symbols[i].start, symbols[i].length});
  }
  return out;
}

}  // namespace tessera::engine::tokenizer_internal

#endif  // TESSERA_ENGINE_TOKENIZER_SYMBOL_MERGER_H_
