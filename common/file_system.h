// FileSystem: the injected view of files. Services write through it so that
// tests can use InMemoryFileSystem and so that durability rules (atomic
// replace with fsync of file and directory) live in one place.
//
// Errors: NOT_FOUND for a missing path, ALREADY_EXISTS, PERMISSION_DENIED,
// RESOURCE_EXHAUSTED for a full disk or a file over the read limit,
// FAILED_PRECONDITION for a directory where a file is expected, INTERNAL for
// other I/O errors; messages name the path and the OS reason.
// Implementations are thread-safe.
#ifndef TESSERA_COMMON_FILE_SYSTEM_H_
#define TESSERA_COMMON_FILE_SYSTEM_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"

namespace tessera {

class FileSystem {
 public:
  virtual ~FileSystem() = default;

  // Reads a whole file. Fails with RESOURCE_EXHAUSTED above `max_bytes`.
  virtual absl::StatusOr<std::string> ReadFile(absl::string_view path,
                                               uint64_t max_bytes = uint64_t{1} << 30) = 0;
  // Replaces `path` atomically: readers see the old or the new content, never
  // a mix, and after OK the new content survives a crash. `mode` applies to
  // the new file (0600 for secrets).
  virtual absl::Status WriteFileAtomic(absl::string_view path, absl::string_view content,
                                       int mode = 0644) = 0;
  virtual absl::Status AppendToFile(absl::string_view path, absl::string_view content) = 0;
  virtual bool Exists(absl::string_view path) = 0;
  virtual bool IsDirectory(absl::string_view path) = 0;
  // Creates the directory and its parents; OK if it exists already.
  virtual absl::Status CreateDirectories(absl::string_view path, int mode = 0755) = 0;
  // Names (not paths) of the entries of a directory, sorted.
  virtual absl::StatusOr<std::vector<std::string>> ListDirectory(absl::string_view path) = 0;
  virtual absl::StatusOr<uint64_t> FileSize(absl::string_view path) = 0;
  virtual absl::Status DeleteFile(absl::string_view path) = 0;
  virtual absl::Status Rename(absl::string_view from, absl::string_view to) = 0;
};

// Joins path parts with single slashes ("a/", "/b" -> "a/b").
std::string JoinPath(absl::string_view a, absl::string_view b);

// The real POSIX file system. Process-wide, never deleted.
FileSystem* LocalFileSystem();

// A map-backed file system for tests. Directories are implied by files and
// by CreateDirectories; parents must exist for writes (as on disk).
class InMemoryFileSystem : public FileSystem {
 public:
  absl::StatusOr<std::string> ReadFile(absl::string_view path, uint64_t max_bytes) override;
  absl::Status WriteFileAtomic(absl::string_view path, absl::string_view content,
                               int mode) override;
  absl::Status AppendToFile(absl::string_view path, absl::string_view content) override;
  bool Exists(absl::string_view path) override;
  bool IsDirectory(absl::string_view path) override;
  absl::Status CreateDirectories(absl::string_view path, int mode) override;
  absl::StatusOr<std::vector<std::string>> ListDirectory(absl::string_view path) override;
  absl::StatusOr<uint64_t> FileSize(absl::string_view path) override;
  absl::Status DeleteFile(absl::string_view path) override;
  absl::Status Rename(absl::string_view from, absl::string_view to) override;

 private:
  bool ParentExistsLocked(const std::string& path) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Mutex mu_;
  std::map<std::string, std::string> files_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, bool> dirs_ ABSL_GUARDED_BY(mu_);
};

}  // namespace tessera

#endif  // TESSERA_COMMON_FILE_SYSTEM_H_
