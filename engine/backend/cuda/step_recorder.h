// The host-side bookkeeping behind the CUDA backend's graphs of a forward pass (CUDA graphs for
// the decode step), kept free of CUDA so that it builds and is tested everywhere:
//
//   MetaArena      lays out the small int32 metadata of the ops of one step (token ids,
//                  positions, slots, block tables) in one host buffer that the backend copies to
//                  a fixed device buffer with a single copy before the step runs. Chunks get
//                  power-of-two reservations so that the layout, and therefore the device
//                  pointers baked into a captured graph, stay the same from one decode step to
//                  the next while the block tables grow.
//   OpSignature    the bytes of every launch parameter of the recorded ops (pointers, sizes,
//                  scalars): two steps with equal signatures launch exactly the same kernels with
//                  the same arguments, so the graph captured for one replays the other.
//   GraphCache     which graph replays which signature (compared in full): a bounded LRU map,
//                  and the policy that a signature is captured only the second time it is seen
//                  (a one-off prefill is run eagerly, not captured); when the cache is full the
//                  least recently used graph is offered for an in-place update
//                  (cudaGraphExecUpdate) before a new one is instantiated.
#ifndef TESSERA_ENGINE_BACKEND_CUDA_STEP_RECORDER_H_
#define TESSERA_ENGINE_BACKEND_CUDA_STEP_RECORDER_H_

#include <cstdint>
#include <cstring>
#include <iterator>
#include <list>
#include <optional>
#include <string>
#include <type_traits>
#include <functional>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

namespace tessera::engine::cuda {

class MetaArena {
 public:
  // `host` holds `capacity` int32 values (pinned memory in the backend); not owned.
  MetaArena(int32_t* host, int64_t capacity) : host_(host), capacity_(capacity) {}

  // Copies `n` values into the arena and returns their offset (in int32 values), or nullopt
  // when the arena is full (the caller runs what it has recorded and starts over). A chunk equal
  // to the last one staged under the same `kind` is not copied again: its offset is returned
  // (the layers of one step share their positions, slots and tables). Chunks start at multiples
  // of kAlign values and reserve a power of two (at least kMinReserve) so that a chunk growing
  // by a few values does not move the chunks after it.
  std::optional<int64_t> Stage(int kind, const int32_t* data, int64_t n);

  // Values to copy to the device (a prefix of the host buffer).
  int64_t used() const { return used_; }
  int64_t capacity() const { return capacity_; }
  const int32_t* host() const { return host_; }
  // Starts a new step: empty, nothing to share.
  void Reset();

  static constexpr int64_t kAlign = 32;       // 128 bytes
  static constexpr int64_t kMinReserve = 64;  // values
  static int64_t Reserve(int64_t n);

 private:
  struct Last {
    int64_t offset = -1;
    int64_t n = 0;
  };
  int32_t* host_;
  int64_t capacity_;
  int64_t used_ = 0;
  std::unordered_map<int, Last> last_;
};

// Launch parameters of the ops recorded for one step, as bytes.
class OpSignature {
 public:
  // Appends an op: its kind (the launcher's address, say) and the raw bytes of each trivially
  // copyable argument (which must have no padding bytes).
  template <typename... Args>
  void Add(uint64_t op, const Args&... args) {
    Put(op);
    (Put(args), ...);
  }
  void Clear() { bytes_.clear(); }
  bool empty() const { return bytes_.empty(); }
  const std::string& bytes() const { return bytes_; }

 private:
  template <typename T>
  void Put(const T& v) {
    static_assert(std::is_trivially_copyable_v<T>, "signature arguments must be plain values");
    const char* p = reinterpret_cast<const char*>(&v);
    bytes_.append(p, sizeof(T));
  }
  std::string bytes_;
};

// What to do with a step's recorded ops.
enum class GraphAction {
  kReplay,   // a graph for this exact signature exists: launch it
  kEager,    // first sighting (or graphs off): run the ops one by one
  kCapture,  // seen before: capture a graph (update the most recent one, or instantiate)
};

// Exec is the backend's handle type (cudaGraphExec_t); Destroy is called on evicted handles.
template <typename Exec>
class GraphCache {
 public:
  explicit GraphCache(size_t max_graphs = 32, size_t max_seen = 1024)
      : max_graphs_(max_graphs), max_seen_(max_seen) {}

  // The action for `sig`; for kReplay, *exec is the graph to launch.
  GraphAction Decide(const std::string& sig, Exec* exec) {
    auto it = index_.find(sig);
    if (it != index_.end()) {
      lru_.splice(lru_.begin(), lru_, it->second);  // most recent first
      *exec = it->second->second;
      return GraphAction::kReplay;
    }
    const size_t h = std::hash<std::string>{}(sig);
    if (seen_.count(h) == 0) {
      if (seen_.size() >= max_seen_) seen_.clear();
      seen_.insert(h);
      return GraphAction::kEager;
    }
    return GraphAction::kCapture;
  }

  // When the cache is full, the least recently used graph: rather than evict it, the caller may
  // update it in place (cudaGraphExecUpdate) to replay a new signature. While there is room,
  // none (every signature keeps its own graph: alternating step shapes stay cached).
  std::optional<Exec> UpdateCandidate() const {
    if (lru_.empty() || lru_.size() < max_graphs_) return std::nullopt;
    return lru_.back().second;
  }

  // The update candidate now replays `sig` (no longer its old signature); it becomes the most
  // recently used.
  void RekeyCandidate(const std::string& sig) {
    index_.erase(lru_.back().first);
    lru_.back().first = sig;
    lru_.splice(lru_.begin(), lru_, std::prev(lru_.end()));
    index_[sig] = lru_.begin();
    seen_.erase(std::hash<std::string>{}(sig));
  }

  // A newly instantiated graph for `sig`; returns the handles evicted to make room, for the
  // caller to destroy.
  std::vector<Exec> Insert(const std::string& sig, Exec exec) {
    std::vector<Exec> evicted;
    lru_.emplace_front(sig, exec);
    index_[sig] = lru_.begin();
    seen_.erase(std::hash<std::string>{}(sig));
    while (lru_.size() > max_graphs_) {
      evicted.push_back(lru_.back().second);
      index_.erase(lru_.back().first);
      lru_.pop_back();
    }
    return evicted;
  }

  // Every handle, emptying the cache (for the caller to destroy).
  std::vector<Exec> Clear() {
    std::vector<Exec> all;
    for (auto& [sig, e] : lru_) all.push_back(e);
    lru_.clear();
    index_.clear();
    seen_.clear();
    return all;
  }

  size_t size() const { return lru_.size(); }

 private:
  using Entry = std::pair<std::string, Exec>;
  size_t max_graphs_, max_seen_;
  std::list<Entry> lru_;
  std::unordered_map<std::string, typename std::list<Entry>::iterator> index_;
  std::unordered_set<size_t> seen_;  // hashes of signatures run once (a collision only
                                     // makes a step captured one sighting early)
};

}  // namespace tessera::engine::cuda

#endif  // TESSERA_ENGINE_BACKEND_CUDA_STEP_RECORDER_H_
