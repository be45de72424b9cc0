#include "common/file_system.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace tessera {
namespace {

absl::Status ErrnoStatus(int err, absl::string_view op, absl::string_view path) {
  std::string msg = absl::StrCat(op, " ", path, ": ", strerror(err));
  switch (err) {
    case ENOENT: case ENOTDIR: return absl::NotFoundError(msg);
    case EEXIST: return absl::AlreadyExistsError(msg);
    case EACCES: case EPERM: case EROFS: return absl::PermissionDeniedError(msg);
    case ENOSPC: case EDQUOT: case EMFILE: case ENFILE: return absl::ResourceExhaustedError(msg);
    case EISDIR: return absl::FailedPreconditionError(msg);
    default: return absl::InternalError(msg);
  }
}

std::string DirName(absl::string_view path) {
  size_t slash = path.rfind('/');
  if (slash == absl::string_view::npos) return ".";
  if (slash == 0) return "/";
  return std::string(path.substr(0, slash));
}

absl::Status WriteAll(int fd, absl::string_view data, absl::string_view path) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus(errno, "write", path);
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return absl::OkStatus();
}

class PosixFileSystem : public FileSystem {
 public:
  absl::StatusOr<std::string> ReadFile(absl::string_view path, uint64_t max_bytes) override {
    std::string p(path);
    int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return ErrnoStatus(errno, "open", path);
    struct stat st;
    if (::fstat(fd, &st) != 0) {
      int err = errno;
      ::close(fd);
      return ErrnoStatus(err, "stat", path);
    }
    if (S_ISDIR(st.st_mode)) {
      ::close(fd);
      return absl::FailedPreconditionError(absl::StrCat("read ", path, ": is a directory"));
    }
    if (static_cast<uint64_t>(st.st_size) > max_bytes) {
      ::close(fd);
      return absl::ResourceExhaustedError(absl::StrCat("read ", path, ": ", st.st_size,
                                                       " bytes exceeds the limit of ", max_bytes));
    }
    std::string out;
    out.reserve(static_cast<size_t>(st.st_size));
    char buf[65536];
    while (true) {
      ssize_t n = ::read(fd, buf, sizeof(buf));
      if (n < 0) {
        if (errno == EINTR) continue;
        int err = errno;
        ::close(fd);
        return ErrnoStatus(err, "read", path);
      }
      if (n == 0) break;
      out.append(buf, static_cast<size_t>(n));
      if (out.size() > max_bytes) {
        ::close(fd);
        return absl::ResourceExhaustedError(
            absl::StrCat("read ", path, ": exceeds the limit of ", max_bytes, " bytes"));
      }
    }
    ::close(fd);
    return out;
  }

  absl::Status WriteFileAtomic(absl::string_view path, absl::string_view content,
                               int mode) override {
    std::string tmp = absl::StrCat(path, ".tmp.", ::getpid(), ".", ++counter_);
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (fd < 0) return ErrnoStatus(errno, "create", tmp);
    absl::Status s = WriteAll(fd, content, tmp);
    if (s.ok() && ::fsync(fd) != 0) s = ErrnoStatus(errno, "fsync", tmp);
    if (::close(fd) != 0 && s.ok()) s = ErrnoStatus(errno, "close", tmp);
    if (s.ok() && fchmod_at_path(tmp, mode) != 0) s = ErrnoStatus(errno, "chmod", tmp);
    if (s.ok() && ::rename(tmp.c_str(), std::string(path).c_str()) != 0) {
      s = ErrnoStatus(errno, "rename", path);
    }
    if (!s.ok()) {
      ::unlink(tmp.c_str());
      return s;
    }
    return SyncDir(DirName(path));
  }

  absl::Status AppendToFile(absl::string_view path, absl::string_view content) override {
    std::string p(path);
    int fd = ::open(p.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) return ErrnoStatus(errno, "open", path);
    absl::Status s = WriteAll(fd, content, path);
    if (::close(fd) != 0 && s.ok()) s = ErrnoStatus(errno, "close", path);
    return s;
  }

  bool Exists(absl::string_view path) override {
    struct stat st;
    return ::stat(std::string(path).c_str(), &st) == 0;
  }

  bool IsDirectory(absl::string_view path) override {
    struct stat st;
    return ::stat(std::string(path).c_str(), &st) == 0 && S_ISDIR(st.st_mode);
  }

  absl::Status CreateDirectories(absl::string_view path, int mode) override {
    if (path.empty()) return absl::InvalidArgumentError("CreateDirectories: empty path");
    std::string p(path);
    while (p.size() > 1 && p.back() == '/') p.pop_back();
    if (IsDirectory(p)) return absl::OkStatus();
    std::string parent = DirName(p);
    if (parent != p && !IsDirectory(parent)) {
      absl::Status s = CreateDirectories(parent, mode);
      if (!s.ok()) return s;
    }
    if (::mkdir(p.c_str(), mode) != 0 && errno != EEXIST) return ErrnoStatus(errno, "mkdir", p);
    if (!IsDirectory(p)) {
      return absl::FailedPreconditionError(absl::StrCat("mkdir ", p, ": exists and is not a directory"));
    }
    return absl::OkStatus();
  }

  absl::StatusOr<std::vector<std::string>> ListDirectory(absl::string_view path) override {
    std::string p(path);
    DIR* dir = ::opendir(p.c_str());
    if (dir == nullptr) return ErrnoStatus(errno, "opendir", path);
    std::vector<std::string> names;
    while (struct dirent* e = ::readdir(dir)) {
      if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
      names.emplace_back(e->d_name);
    }
    ::closedir(dir);
    std::sort(names.begin(), names.end());
    return names;
  }

  absl::StatusOr<uint64_t> FileSize(absl::string_view path) override {
    struct stat st;
    if (::stat(std::string(path).c_str(), &st) != 0) return ErrnoStatus(errno, "stat", path);
    return static_cast<uint64_t>(st.st_size);
  }

  absl::Status DeleteFile(absl::string_view path) override {
    if (::unlink(std::string(path).c_str()) != 0) return ErrnoStatus(errno, "unlink", path);
    return absl::OkStatus();
  }

  absl::Status Rename(absl::string_view from, absl::string_view to) override {
    if (::rename(std::string(from).c_str(), std::string(to).c_str()) != 0) {
      return ErrnoStatus(errno, "rename", from);
    }
    return SyncDir(DirName(to));
  }

 private:
  static int fchmod_at_path(const std::string& path, int mode) {
    // open(2) applies the umask; set the requested mode exactly.
    return ::chmod(path.c_str(), static_cast<mode_t>(mode));
  }
  static absl::Status SyncDir(const std::string& dir) {
    int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return ErrnoStatus(errno, "open dir", dir);
    int rc = ::fsync(fd);
    int err = errno;
    ::close(fd);
    if (rc != 0 && err != EINVAL) return ErrnoStatus(err, "fsync dir", dir);
    return absl::OkStatus();
  }
  std::atomic<uint64_t> counter_{0};
};

std::string Normalize(absl::string_view path) {
  std::string p(path);
  while (p.size() > 1 && p.back() == '/') p.pop_back();
  return p;
}

}  // namespace

std::string JoinPath(absl::string_view a, absl::string_view b) {
  if (a.empty()) return std::string(b);
  if (b.empty()) return std::string(a);
  absl::string_view left = a;
  while (left.size() > 1 && absl::EndsWith(left, "/")) left.remove_suffix(1);
  while (absl::StartsWith(b, "/")) b.remove_prefix(1);
  if (left == "/") return absl::StrCat("/", b);
  return absl::StrCat(left, "/", b);
}

FileSystem* LocalFileSystem() {
  static FileSystem* fs = new PosixFileSystem();
  return fs;
}

bool InMemoryFileSystem::ParentExistsLocked(const std::string& path) {
  std::string parent = DirName(path);
  return parent == "." || parent == "/" || dirs_.count(parent) > 0;
}

absl::StatusOr<std::string> InMemoryFileSystem::ReadFile(absl::string_view path,
                                                         uint64_t max_bytes) {
  absl::MutexLock lock(&mu_);
  auto it = files_.find(Normalize(path));
  if (it == files_.end()) {
    if (dirs_.count(Normalize(path))) {
      return absl::FailedPreconditionError(absl::StrCat("read ", path, ": is a directory"));
    }
    return absl::NotFoundError(absl::StrCat("open ", path, ": No such file or directory"));
  }
  if (it->second.size() > max_bytes) {
    return absl::ResourceExhaustedError(absl::StrCat("read ", path, ": ", it->second.size(),
                                                     " bytes exceeds the limit of ", max_bytes));
  }
  return it->second;
}

absl::Status InMemoryFileSystem::WriteFileAtomic(absl::string_view path,
                                                 absl::string_view content, int) {
  absl::MutexLock lock(&mu_);
  std::string p = Normalize(path);
  if (!ParentExistsLocked(p)) {
    return absl::NotFoundError(absl::StrCat("create ", path, ": No such file or directory"));
  }
  if (dirs_.count(p)) return absl::FailedPreconditionError(absl::StrCat(path, " is a directory"));
  files_[p] = std::string(content);
  return absl::OkStatus();
}

absl::Status InMemoryFileSystem::AppendToFile(absl::string_view path, absl::string_view content) {
  absl::MutexLock lock(&mu_);
  std::string p = Normalize(path);
  if (!ParentExistsLocked(p)) {
    return absl::NotFoundError(absl::StrCat("open ", path, ": No such file or directory"));
  }
  files_[p].append(content.data(), content.size());
  return absl::OkStatus();
}

bool InMemoryFileSystem::Exists(absl::string_view path) {
  absl::MutexLock lock(&mu_);
  std::string p = Normalize(path);
  return files_.count(p) > 0 || dirs_.count(p) > 0;
}

bool InMemoryFileSystem::IsDirectory(absl::string_view path) {
  absl::MutexLock lock(&mu_);
  return dirs_.count(Normalize(path)) > 0;
}

absl::Status InMemoryFileSystem::CreateDirectories(absl::string_view path, int) {
  absl::MutexLock lock(&mu_);
  std::string p = Normalize(path);
  while (!p.empty() && p != "." && p != "/") {
    if (files_.count(p)) {
      return absl::FailedPreconditionError(absl::StrCat("mkdir ", p, ": exists and is not a directory"));
    }
    dirs_[p] = true;
    p = DirName(p);
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::string>> InMemoryFileSystem::ListDirectory(
    absl::string_view path) {
  absl::MutexLock lock(&mu_);
  std::string p = Normalize(path);
  if (!dirs_.count(p)) return absl::NotFoundError(absl::StrCat("opendir ", path, ": not found"));
  std::vector<std::string> names;
  auto collect = [&](const std::string& entry) {
    if (DirName(entry) == p) names.push_back(entry.substr(p.size() + 1));
  };
  for (const auto& [f, _] : files_) collect(f);
  for (const auto& [d, _] : dirs_) collect(d);
  std::sort(names.begin(), names.end());
  return names;
}

absl::StatusOr<uint64_t> InMemoryFileSystem::FileSize(absl::string_view path) {
  absl::MutexLock lock(&mu_);
  auto it = files_.find(Normalize(path));
  if (it == files_.end()) return absl::NotFoundError(absl::StrCat("stat ", path, ": not found"));
  return it->second.size();
}

absl::Status InMemoryFileSystem::DeleteFile(absl::string_view path) {
  absl::MutexLock lock(&mu_);
  if (files_.erase(Normalize(path)) == 0) {
    return absl::NotFoundError(absl::StrCat("unlink ", path, ": not found"));
  }
  return absl::OkStatus();
}

absl::Status InMemoryFileSystem::Rename(absl::string_view from, absl::string_view to) {
  absl::MutexLock lock(&mu_);
  auto it = files_.find(Normalize(from));
  if (it == files_.end()) return absl::NotFoundError(absl::StrCat("rename ", from, ": not found"));
  std::string t = Normalize(to);
  if (!ParentExistsLocked(t)) return absl::NotFoundError(absl::StrCat("rename to ", to, ": no parent"));
  std::string content = std::move(it->second);
  files_.erase(it);
  files_[t] = std::move(content);
  return absl::OkStatus();
}

}  // namespace tessera
