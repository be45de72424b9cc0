#include "engine/model/model_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace tessera::engine {

const TensorView* ModelFile::FindTensor(std::string_view name) const {
  for (const TensorView& t : tensors()) {
    if (t.name == name) return &t;
  }
  return nullptr;
}

size_t RequiredAlignment(DType type) { return type == DType::kF32 ? alignof(float) : alignof(uint16_t); }

void AlignTensorData(std::vector<TensorView>* tensors, std::vector<std::unique_ptr<uint64_t[]>>* copies) {
  for (TensorView& t : *tensors) {
    if (reinterpret_cast<uintptr_t>(t.data) % RequiredAlignment(t.type) == 0) continue;
    auto copy = std::make_unique<uint64_t[]>((t.nbytes + 7) / 8);
    std::memcpy(copy.get(), t.data, t.nbytes);
    t.data = copy.get();
    copies->push_back(std::move(copy));
  }
}

absl::StatusOr<FileBytes> FileBytes::Map(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    std::string msg = absl::StrCat("cannot open model file '", path, "': ", std::strerror(err));
    if (err == ENOENT || err == ENOTDIR) return absl::NotFoundError(msg);
    if (err == EACCES) return absl::PermissionDeniedError(msg);
    return absl::InternalError(msg);
  }
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    return absl::InternalError(absl::StrCat("cannot stat '", path, "': ", std::strerror(err)));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    return absl::InvalidArgumentError(absl::StrCat("'", path, "' is not a regular file"));
  }
  if (st.st_size == 0) {
    ::close(fd);
    return absl::InvalidArgumentError(absl::StrCat("model file '", path, "' is empty"));
  }
  const size_t size = static_cast<size_t>(st.st_size);
  void* p = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
  const int err = errno;
  ::close(fd);  // the mapping keeps the file open
  if (p == MAP_FAILED) {
    return absl::InternalError(absl::StrCat("cannot mmap '", path, "' (", size,
                                            " bytes): ", std::strerror(err)));
  }
  FileBytes b;
  b.data_ = static_cast<const unsigned char*>(p);
  b.size_ = size;
  b.mapped_ = true;
  return b;
}

FileBytes FileBytes::Own(std::string bytes) {
  FileBytes b;
  b.owned_ = std::make_unique<std::string>(std::move(bytes));
  b.data_ = reinterpret_cast<const unsigned char*>(b.owned_->data());
  b.size_ = b.owned_->size();
  return b;
}

FileBytes::FileBytes(FileBytes&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)),
      size_(std::exchange(other.size_, 0)),
      mapped_(std::exchange(other.mapped_, false)),
      owned_(std::move(other.owned_)) {}

FileBytes& FileBytes::operator=(FileBytes&& other) noexcept {
  if (this != &other) {
    Reset();
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
    mapped_ = std::exchange(other.mapped_, false);
    owned_ = std::move(other.owned_);
  }
  return *this;
}

FileBytes::~FileBytes() { Reset(); }

void FileBytes::Reset() {
  if (mapped_ && data_ != nullptr) {
    ::munmap(const_cast<unsigned char*>(data_), size_);
  }
  data_ = nullptr;
  size_ = 0;
  mapped_ = false;
  owned_.reset();
}

}  // namespace tessera::engine
