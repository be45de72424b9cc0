#!/usr/bin/env bash
# Builds the model-file fuzzers with clang's libFuzzer + AddressSanitizer + UBSan and runs each
# for the given number of seconds (default 120) on a corpus seeded with small valid files made by
# make_seeds.cc (and a tokenizer taken from testdata/stories260K.gguf).
#
# Usage: engine/model/fuzz/run_fuzzers.sh [seconds] [gguf|safetensors ...]
# Environment: FUZZ_OUT (default /tmp/tessera-model-fuzz) holds the binaries, the growing
# corpora and crash artifacts; CXX (default clang++); FUZZ_JOBS (default 1) parallel workers.
# Exit status is non-zero when a fuzzer finds a crash; its input is in $FUZZ_OUT/artifacts/.
set -euo pipefail

seconds="${1:-120}"
shift || true
targets=("$@")
[[ ${#targets[@]} -eq 0 ]] && targets=(gguf safetensors)

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
out="${FUZZ_OUT:-/tmp/tessera-model-fuzz}"
cxx="${CXX:-clang++}"
jobs="${FUZZ_JOBS:-1}"
mkdir -p "$out/artifacts"

if ! command -v "$cxx" >/dev/null; then
  echo "run_fuzzers.sh: $cxx not found (apt-get install clang)" >&2
  exit 2
fi
absl_libs="$(pkg-config --libs absl_status absl_statusor absl_strings absl_str_format absl_hash \
  absl_raw_hash_set)"
common_flags=(-std=c++20 -g -O1 -I"$root" -Wno-unused-command-line-argument)
lib_srcs=("$root/engine/model/dtype.cc" "$root/engine/model/model_file.cc")

echo "== building seeds tool"
"$cxx" "${common_flags[@]}" -o "$out/make_seeds" "$here/make_seeds.cc" "$root/engine/model/gguf_writer.cc" \
  "$root/engine/model/gguf.cc" "${lib_srcs[@]}" $absl_libs
rm -rf "$out/seeds"
"$out/make_seeds" "$out/seeds" "$root/engine/model/testdata/stories260K.gguf"

status=0
for t in "${targets[@]}"; do
  case "$t" in
    gguf) srcs=("$root/engine/model/gguf.cc") ;;
    safetensors) srcs=("$root/engine/model/safetensors.cc") ;;
    *) echo "unknown fuzzer $t" >&2; exit 2 ;;
  esac
  echo "== building ${t}_fuzzer"
  "$cxx" "${common_flags[@]}" -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
    -o "$out/${t}_fuzzer" "$here/${t}_fuzzer.cc" "${srcs[@]}" "${lib_srcs[@]}" $absl_libs
  mkdir -p "$out/corpus/$t"
  echo "== running ${t}_fuzzer for ${seconds}s"
  # -malloc_limit_mb makes any single allocation above 256 MB a reported failure: a hostile
  # file must never make the parser allocate by what it claims.
  parallel=()
  if [[ "$jobs" -gt 1 ]]; then
    parallel=(-jobs="$jobs" -workers="$jobs")  # workers log to fuzz-N.log in $out
  fi
  (cd "$out" && UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ASAN_OPTIONS=detect_leaks=1 \
      "$out/${t}_fuzzer" -max_total_time="$seconds" -max_len=8192 -malloc_limit_mb=256 \
      -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 "${parallel[@]}" \
      -dict="$here/$t.dict" -artifact_prefix="$out/artifacts/${t}-" \
      "$out/corpus/$t" "$out/seeds/$t") >"$out/${t}.log" 2>&1 || true
  [[ "$jobs" -gt 1 ]] && cat "$out"/fuzz-*.log >>"$out/${t}.log" && rm -f "$out"/fuzz-*.log
  grep -E "^#[0-9]+[[:space:]]+(INITED|DONE)|ERROR|SUMMARY|stat::|Test unit written" "$out/${t}.log" || true
  if grep -qE "ERROR: (libFuzzer|AddressSanitizer|UndefinedBehaviorSanitizer)|runtime error|deadly signal" "$out/${t}.log"; then
    echo "!! ${t}_fuzzer found a problem; see $out/${t}.log and $out/artifacts/" >&2
    status=1
  fi
done
exit $status
