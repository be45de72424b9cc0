#!/usr/bin/env bash
# bench/gpu/stage.sh: on a machine with nvcc but no GPU (or no Bazel on the GPU machine), builds
# the GPU tests and gpu_bench and copies them, with the shared libraries they need (all but libc,
# the CUDA driver and cuBLAS, which the GPU machine brings), into DIR (default .gpu_stage,
# ignored by git), and packs it as DIR.tar.xz (small enough to carry to a lent GPU machine). On
# the GPU machine, from the repository root:
#
#   tar -xJf .gpu_stage.tar.xz && bench/gpu/run.sh --prebuilt .gpu_stage [--quick] [--profile]
#
#   bench/gpu/stage.sh [DIR]
set -euo pipefail
cd "$(dirname "$0")/../.."
DIR="${1:-.gpu_stage}"
FLAGS=(--disk_cache="$HOME/.cache/tessera/bazel-disk-cache")
bazel build "${FLAGS[@]}" //tests/cuda/... //bench/gpu:gpu_bench
BIN="$(bazel info "${FLAGS[@]}" bazel-bin 2>/dev/null)"
rm -rf "$DIR"
mkdir -p "$DIR/lib"
for f in tests/cuda/device_probe_test tests/cuda/cuda_backend_test tests/cuda/cuda_model_test \
         bench/gpu/gpu_bench; do
  [[ -x "$BIN/$f" ]] || { echo "stage.sh: $f was not built (is nvcc installed?)" >&2; exit 1; }
  cp "$BIN/$f" "$DIR/"
  ldd "$BIN/$f" | awk '/=> \//{print $3}'
done | sort -u |
  grep -v -E "/(libc|libm|libpthread|libdl|librt|libgcc_s|libstdc\+\+|libcuda|libcublas|libcublasLt)\.so" |
  while read -r lib; do cp -L "$lib" "$DIR/lib/"; done
tar -C "$(dirname "$DIR")" -cf - "$(basename "$DIR")" | xz -T2 -6 > "$DIR.tar.xz"
du -sh "$DIR" "$DIR.tar.xz"
echo "staged in $DIR and $DIR.tar.xz; on the GPU machine:" \
     "tar -xJf $DIR.tar.xz && bench/gpu/run.sh --prebuilt $DIR"
