// libFuzzer target for GgufFile::FromBuffer: whatever it accepts must be readable, every tensor
// byte range inside the buffer and every metadata value printable, with no crash or sanitizer
// report. Build and run with run_fuzzers.sh; Bazel builds it with replay_main.cc.
#include <cstddef>
#include <cstdint>
#include <string>

#include "engine/model/gguf.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using tessera::engine::GgufFile;
  using tessera::engine::GgufType;
  absl::StatusOr<std::unique_ptr<GgufFile>> f =
      GgufFile::FromBuffer(std::string(reinterpret_cast<const char*>(data), size));
  if (!f.ok()) return 0;
  const GgufFile& file = **f;
  volatile unsigned char sink = 0;
  for (const auto& t : file.tensors()) {
    const unsigned char* p = static_cast<const unsigned char*>(t.data);
    unsigned char acc = 0;
    for (size_t i = 0; i < t.nbytes; ++i) acc ^= p[i];  // ASan checks every byte
    sink = sink ^ acc;
    if (file.FindTensor(t.name) != &t) __builtin_trap();
    if (t.cols() * t.rows() <= 0) __builtin_trap();
  }
  for (const GgufFile::Entry& e : file.entries()) {
    (void)file.FormatValue(e.key, 4);
    (void)file.GetInt(e.key);
    (void)file.GetFloat(e.key);
    (void)file.GetBool(e.key);
    (void)file.GetString(e.key);
    if (e.type == GgufType::kArray) {
      (void)file.GetStringArray(e.key);
      (void)file.GetFloatArray(e.key);
      (void)file.GetIntArray(e.key);
    }
  }
  (void)file.architecture();
  return 0;
}
