#!/usr/bin/env bash
# bench/gpu/run.sh: builds the CUDA backend, runs its GPU tests (tests/cuda, tagged
# requires-gpu), then times it with gpu_bench and prints the table (see docs/ENGINE.md, "CUDA").
#
#   bench/gpu/run.sh              build with Bazel, test, benchmark
#   bench/gpu/run.sh --quick      the same with fewer streams and steps
#   bench/gpu/run.sh --profile    also per-op times of a prefill and decode steps
#   bench/gpu/run.sh --prebuilt DIR [--quick]
#                                 on a GPU machine without Bazel: run the test binaries and
#                                 gpu_bench found in DIR (copied from bazel-bin, with the shared
#                                 libraries they need in DIR/lib), from the repository root.
#
# Exits 2, saying why, when this machine has no usable NVIDIA GPU; 1 when a test fails (after
# saying which of TESSERA_CUDA_GRAPHS, TESSERA_CUDA_GROUPED_DECODE, TESSERA_CUDA_GEMM_PREFILL set
# to 0 makes it pass).
set -euo pipefail
cd "$(dirname "$0")/../.."

BENCH_ARGS=()
PREBUILT=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --quick|--profile) BENCH_ARGS+=("$1"); shift ;;
    --prebuilt) PREBUILT="${2:?--prebuilt needs a directory}"; shift 2 ;;
    *) echo "usage: bench/gpu/run.sh [--quick] [--profile] [--prebuilt DIR]" >&2; exit 64 ;;
  esac
done

if ! command -v nvidia-smi >/dev/null 2>&1 || ! nvidia-smi -L >/dev/null 2>&1; then
  echo "bench/gpu/run.sh: no NVIDIA GPU on this machine (nvidia-smi is missing or finds no" \
       "device). This benchmark needs one; the CUDA code still builds and its tests skip here." >&2
  exit 2
fi
nvidia-smi -L

TESTS=(device_probe_test cuda_backend_test cuda_model_test)
# Switches that turn newer CUDA paths off, one at a time, to say which one a failing test needs.
SWITCHES=(TESSERA_CUDA_GRAPHS TESSERA_CUDA_GROUPED_DECODE TESSERA_CUDA_GEMM_PREFILL)

# run_test BINARY: runs one GPU test binary; when it fails, runs it again with each switch off
# (and all of them off) and says which runs pass, then returns 1.
run_test() {
  local bin="$1"
  "$bin" --gtest_brief=1 && return 0
  echo "bench/gpu/run.sh: $(basename "$bin") failed; again with newer paths turned off:" >&2
  local v
  for v in "${SWITCHES[@]}"; do
    if env "$v=0" "$bin" --gtest_brief=1 >/dev/null 2>&1; then
      echo "  $v=0: passes" >&2
    else
      echo "  $v=0: still fails" >&2
    fi
  done
  if env TESSERA_CUDA_GRAPHS=0 TESSERA_CUDA_GROUPED_DECODE=0 TESSERA_CUDA_GEMM_PREFILL=0 \
       "$bin" --gtest_brief=1 >/dev/null 2>&1; then
    echo "  all three off: passes" >&2
  else
    echo "  all three off: still fails" >&2
  fi
  return 1
}

if [[ -z "$PREBUILT" ]]; then
  if [[ ! -x /usr/local/cuda/bin/nvcc && -z "${CUDA_HOME:-}" ]]; then
    echo "bench/gpu/run.sh: no CUDA toolkit (/usr/local/cuda/bin/nvcc, or set CUDA_HOME)." >&2
    exit 2
  fi
  BAZEL=(bazel --output_base=/tmp/bazel-ob-cuda)
  FLAGS=(--disk_cache="$HOME/.cache/tessera/bazel-disk-cache" --experimental_convenience_symlinks=ignore)
  echo "== build"
  "${BAZEL[@]}" build "${FLAGS[@]}" //engine/backend/cuda/... //tests/cuda/... //bench/gpu:gpu_bench
  BIN="$("${BAZEL[@]}" info "${FLAGS[@]}" bazel-bin 2>/dev/null)"
  echo "== GPU tests"
  for t in "${TESTS[@]}"; do
    run_test "$BIN/tests/cuda/$t" || { echo "bench/gpu/run.sh: $t failed" >&2; exit 1; }
  done
  echo "== benchmark"
  exec "$BIN/bench/gpu/gpu_bench" "${BENCH_ARGS[@]}"
else
  export LD_LIBRARY_PATH="$PREBUILT/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  # cuBLAS from the toolkit, or from a Python nvidia-cublas wheel when only that is installed.
  for d in /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib \
           $(find / -xdev -name 'libcublasLt.so.13*' -printf '%h\n' 2>/dev/null | sort -u | head -3); do
    [[ -d "$d" ]] && LD_LIBRARY_PATH="$LD_LIBRARY_PATH:$d"
  done
  echo "== GPU tests (prebuilt)"
  for t in "${TESTS[@]}"; do
    run_test "$PREBUILT/$t" || { echo "bench/gpu/run.sh: $t failed" >&2; exit 1; }
  done
  echo "== benchmark (prebuilt)"
  exec "$PREBUILT/gpu_bench" "${BENCH_ARGS[@]}"
fi
