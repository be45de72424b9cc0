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
#   bench/gpu/run.sh --experimental ...
#                                 also every GPU test with the paths that are off by default
#                                 until measured turned on (EXPERIMENTAL_PATHS below, each =1;
#                                 a failure there is run again with each of them =0), then
#                                 `gpu_bench --experimental` (their rows, in a second process)
#                                 and with --ncu `gpu_bench --kernels --experimental` too
#   bench/gpu/run.sh --ncu DIR ...
#                                 after the benchmark, Nsight Compute over `gpu_bench --kernels`
#                                 (per-kernel device times of decode steps) into DIR/ncu.csv,
#                                 summarised by bench/gpu/ncu_summary.py when python3 is there
#   bench/gpu/run.sh --keep-going ...
#                                 run the benchmark even when a test fails (for a GPU machine
#                                 lent for a few minutes: one run says everything); the exit
#                                 status is still 1 when a test failed.
#
# Each test binary runs under a time limit (TESSERA_GPU_TEST_TIMEOUT seconds, default 300).
# Exits 2, saying why, when this machine has no usable NVIDIA GPU; 1 when a test fails (after
# saying which of TESSERA_CUDA_GRAPHS, TESSERA_CUDA_GROUPED_DECODE, TESSERA_CUDA_GEMM_PREFILL,
# TESSERA_CUDA_MATVEC_PERSISTENT set to 0 makes its failing tests pass).
set -euo pipefail
cd "$(dirname "$0")/../.."

BENCH_ARGS=()
PREBUILT=""
KEEP_GOING=0
EXPERIMENTAL=0
NCU_DIR=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --quick|--profile) BENCH_ARGS+=("$1"); shift ;;
    --prebuilt) PREBUILT="${2:?--prebuilt needs a directory}"; shift 2 ;;
    --keep-going) KEEP_GOING=1; shift ;;
    --experimental) EXPERIMENTAL=1; shift ;;
    --ncu) NCU_DIR="${2:?--ncu needs a directory}"; shift 2 ;;
    *) echo "usage: bench/gpu/run.sh [--quick] [--profile] [--keep-going] [--experimental]" \
            "[--ncu DIR]" \
            "[--prebuilt DIR]" >&2
       exit 64 ;;
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
SWITCHES=(TESSERA_CUDA_GRAPHS TESSERA_CUDA_GROUPED_DECODE TESSERA_CUDA_GEMM_PREFILL
          TESSERA_CUDA_MATVEC_PERSISTENT)

# The paths that are off by default until measured on a GPU (each turned on by =1).
EXPERIMENTAL_PATHS=(TESSERA_CUDA_PDL TESSERA_CUDA_FUSED_ROPE_KV TESSERA_CUDA_FUSED_SWIGLU
                    TESSERA_CUDA_MATVEC_ASYNC TESSERA_CUDA_FUSED_SPLIT_MERGE
                    TESSERA_CUDA_TILED_DENSE_ATTENTION)
IN_EXPERIMENTAL=0

LIMIT="${TESSERA_GPU_TEST_TIMEOUT:-300}"
FAILED=0

# run_test BINARY: runs one GPU test binary (time-limited); when it fails, runs its failing tests
# again with each switch off (and all of them off), says which runs pass, and returns 1.
run_test() {
  local bin="$1" log
  log="$(mktemp)"
  local rc=0
  timeout "$LIMIT" "$bin" >"$log" 2>&1 || rc=$?
  if [[ $rc -eq 0 ]]; then
    # Passing: gtest's summary (and the skip count, if any).
    grep -E '^\[(==========|  PASSED  |  SKIPPED )\]' "$log" | tail -n 4
    rm -f "$log"
    return 0
  fi
  # Failing: everything but the passing tests' lines (a crash shows as a RUN line with no end).
  grep -v -E '^\[       OK \]' "$log"
  if [[ $rc -eq 124 ]]; then
    rm -f "$log"
    echo "bench/gpu/run.sh: $(basename "$bin") ran past ${LIMIT} s (TESSERA_GPU_TEST_TIMEOUT)" >&2
    return 1
  fi
  # The failing tests' names, as gtest lists them ("[  FAILED  ] Suite.Name"), as a filter.
  local filter
  filter="$(sed -n 's/^\[  FAILED  \] \([A-Za-z0-9_/]*\.[A-Za-z0-9_/.]*\).*/\1/p' "$log" | sort -u | paste -sd:)"
  if [[ -z "$filter" ]]; then
    # A crash: the test that started and never ended; the tests after it run without it.
    filter="$(sed -n 's/^\[ RUN      \] \([A-Za-z0-9_/.]*\).*/\1/p' "$log" | tail -n 1)"
    echo "bench/gpu/run.sh: $(basename "$bin") crashed (status $rc) in ${filter:-?};" \
         "the others without it:" >&2
    timeout "$LIMIT" "$bin" "--gtest_filter=-${filter}" 2>&1 |
      grep -E '^\[(  FAILED  |  PASSED  |==========)\]' >&2 || true
  fi
  rm -f "$log"
  echo "bench/gpu/run.sh: $(basename "$bin") failed (${filter:-?}, status $rc);" \
       "again with newer paths turned off:" >&2
  local args=(--gtest_brief=1)
  [[ -n "$filter" ]] && args+=("--gtest_filter=$filter")
  local v switches=("${SWITCHES[@]}")
  [[ $IN_EXPERIMENTAL -eq 1 ]] && switches+=("${EXPERIMENTAL_PATHS[@]}")
  for v in "${switches[@]}"; do
    if env "$v=0" timeout "$LIMIT" "$bin" "${args[@]}" >/dev/null 2>&1; then
      echo "  $v=0: passes" >&2
    else
      echo "  $v=0: still fails" >&2
    fi
  done
  if env TESSERA_CUDA_GRAPHS=0 TESSERA_CUDA_GROUPED_DECODE=0 TESSERA_CUDA_GEMM_PREFILL=0 \
       TESSERA_CUDA_MATVEC_PERSISTENT=0 timeout "$LIMIT" "$bin" "${args[@]}" >/dev/null 2>&1; then
    echo "  all off: passes" >&2
  else
    echo "  all off: still fails" >&2
  fi
  return 1
}

# run_all_tests DIR WHAT: every test binary in DIR; a failure is reported ("failed WHAT") and
# stops the script unless --keep-going.
run_all_tests() {
  local t
  for t in "${TESTS[@]}"; do
    if ! run_test "$1/$t"; then
      echo "bench/gpu/run.sh: $t failed$2" >&2
      FAILED=1
      [[ $KEEP_GOING -eq 1 ]] || exit 1
    fi
  done
}

# run_tests DIR: every test binary in DIR, again with the experimental paths on for
# --experimental.
run_tests() {
  run_all_tests "$1" ""
  if [[ $EXPERIMENTAL -eq 1 ]]; then
    local v
    for v in "${EXPERIMENTAL_PATHS[@]}"; do export "$v=1"; done
    IN_EXPERIMENTAL=1
    echo "== GPU tests with ${EXPERIMENTAL_PATHS[*]/%/=1}"
    run_all_tests "$1" " with the experimental paths on"
    for v in "${EXPERIMENTAL_PATHS[@]}"; do unset "$v"; done
    IN_EXPERIMENTAL=0
  fi
}

# run_ncu BINARY CSV [--experimental]: Nsight Compute over `gpu_bench --kernels` (per-kernel device
# times of decode steps) into $NCU_DIR/CSV, summarised by bench/gpu/ncu_summary.py.
run_ncu() {
  local bin="$1" csv="$2" mode="${3:-}" ncu rc=0
  ncu="$(command -v ncu || true)"
  [[ -z "$ncu" && -x /usr/local/cuda/bin/ncu ]] && ncu=/usr/local/cuda/bin/ncu
  if [[ -z "$ncu" ]]; then
    echo "bench/gpu/run.sh: --ncu: no Nsight Compute (ncu) on this machine" >&2
    return 0
  fi
  echo "== Nsight Compute over gpu_bench --kernels $mode -> $NCU_DIR/$csv"
  mkdir -p "$NCU_DIR"
  # shellcheck disable=SC2086  # $mode: empty or one flag
  timeout 300 "$ncu" --profile-from-start off --metrics gpu__time_duration.sum --csv \
    "$bin" --kernels $mode > "$NCU_DIR/$csv" 2> "$NCU_DIR/${csv%.csv}.err" || rc=$?
  if [[ $rc -ne 0 ]]; then
    echo "bench/gpu/run.sh: ncu failed (status $rc; see $NCU_DIR/${csv%.csv}.err)" >&2
  elif command -v python3 >/dev/null 2>&1; then
    # shellcheck disable=SC2086
    python3 bench/gpu/ncu_summary.py $mode "$NCU_DIR/$csv" || true
  fi
}

# run_bench BINARY: the benchmark, then (--experimental) the experimental paths' rows in a
# separate run (a fault there costs none of the default rows), and Nsight Compute for --ncu;
# exit status 1 afterwards when a test or a benchmark failed (--keep-going).
run_bench() {
  local rc=0
  "$1" "${BENCH_ARGS[@]}" || rc=$?
  if [[ $rc -ne 0 ]]; then
    echo "bench/gpu/run.sh: gpu_bench failed (status $rc)" >&2
    [[ $KEEP_GOING -eq 1 && $rc -ne 2 ]] || exit "$rc"
    FAILED=1
  fi
  if [[ $EXPERIMENTAL -eq 1 ]]; then
    echo "== benchmark of the paths that are off by default (gpu_bench --experimental)"
    rc=0
    "$1" --experimental "${BENCH_ARGS[@]}" || rc=$?
    if [[ $rc -ne 0 ]]; then
      echo "bench/gpu/run.sh: gpu_bench --experimental failed (status $rc)" >&2
      FAILED=1
    fi
  fi
  if [[ -n "$NCU_DIR" ]]; then
    run_ncu "$1" ncu.csv
    [[ $EXPERIMENTAL -eq 1 ]] && run_ncu "$1" ncu_experimental.csv --experimental
  fi
  exit "$FAILED"
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
  run_tests "$BIN/tests/cuda"
  echo "== benchmark"
  run_bench "$BIN/bench/gpu/gpu_bench"
else
  export LD_LIBRARY_PATH="$PREBUILT/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  # cuBLAS from the toolkit, or from a Python nvidia-cublas wheel when only that is installed.
  for d in /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib \
           $(find / -xdev -name 'libcublasLt.so.13*' -printf '%h\n' 2>/dev/null | sort -u | head -3); do
    [[ -d "$d" ]] && LD_LIBRARY_PATH="$LD_LIBRARY_PATH:$d"
  done
  echo "== GPU tests (prebuilt)"
  run_tests "$PREBUILT"
  echo "== benchmark (prebuilt)"
  run_bench "$PREBUILT/gpu_bench"
fi
