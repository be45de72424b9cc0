// libFuzzer target for SafetensorsFile::FromBuffer: whatever it accepts must have every tensor
// byte range inside the buffer, with no crash, uncaught exception or sanitizer report. Build and
// run with run_fuzzers.sh; Bazel builds it with replay_main.cc.
#include <cstddef>
#include <cstdint>
#include <string>

#include "engine/model/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using tessera::engine::SafetensorsFile;
  for (bool skip : {false, true}) {
    tessera::engine::SafetensorsOptions options;
    options.skip_unsupported_dtypes = skip;
    absl::StatusOr<std::unique_ptr<SafetensorsFile>> f =
        SafetensorsFile::FromBuffer(std::string(reinterpret_cast<const char*>(data), size), options);
    if (!f.ok()) continue;
    volatile unsigned char sink = 0;
    for (const auto& t : (*f)->tensors()) {
      const unsigned char* p = static_cast<const unsigned char*>(t.data);
      unsigned char acc = 0;
      for (size_t i = 0; i < t.nbytes; ++i) acc ^= p[i];  // ASan checks every byte
      sink = sink ^ acc;
      if ((*f)->FindTensor(t.name) != &t) __builtin_trap();
      if (t.shape.empty()) __builtin_trap();
    }
    for (const auto& [k, v] : (*f)->metadata()) sink = sink ^ static_cast<unsigned char>(k.size() + v.size());
  }
  return 0;
}
