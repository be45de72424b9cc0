#!/usr/bin/env bash
# bench/gpu/stage.sh: on a machine with nvcc but no GPU (or no Bazel on the GPU machine), builds
# the GPU tests and gpu_bench and copies them, with the shared libraries they need (all but libc,
# the CUDA driver and cuBLAS, which the GPU machine brings), into DIR (default .gpu_stage,
# ignored by git). On the GPU machine, from the repository root:
#
#   bench/gpu/run.sh --prebuilt .gpu_stage [--quick] [--profile]
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
du -sh "$DIR"
echo "staged in $DIR; on the GPU machine: bench/gpu/run.sh --prebuilt $DIR"
