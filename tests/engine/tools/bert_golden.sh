#!/usr/bin/env bash
# Regenerates tests/engine/testdata/bert_golden.json: builds make_bert_gguf, writes the seeded
# random BERT models (bge-small shapes, real bge vocabulary: F32 CLS, F32 mean, F16 CLS) to a
# temporary folder, and runs llama.cpp on them through node-llama-cpp (prebuilt CPU binaries,
# offline; installed from bench/engine/node's lock file when missing).
#
#   tests/engine/tools/bert_golden.sh            # from anywhere inside the repository
# Environment: BAZEL_OUTPUT_BASE (default /tmp/bazel-ob-tests-engine), SEED, MATRIX_STD,
# EMBD_STD (the generator's options; the test reads them back from the golden file).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)"
cd "$root"
ob="${BAZEL_OUTPUT_BASE:-/tmp/bazel-ob-tests-engine}"
seed="${SEED:-20240501}"
matrix_std="${MATRIX_STD:-0.02}"
embd_std="${EMBD_STD:-0.02}"
bazel_flags=(-c opt --disk_cache="$HOME/.cache/tessera/bazel-disk-cache"
             --experimental_convenience_symlinks=ignore)

bazel --output_base="$ob" build "${bazel_flags[@]}" //tests/engine/tools:make_bert_gguf
gen="$(bazel --output_base="$ob" info "${bazel_flags[@]}" bazel-bin)/tests/engine/tools/make_bert_gguf"

nlc="$root/bench/engine/node/node_modules"
if [[ ! -d "$nlc/node-llama-cpp" || ! -d "$nlc/@node-llama-cpp/linux-x64" ]]; then
  (cd bench/engine/node && npm ci --no-audit --no-fund)
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
models=""
for cfg in f32:cls f32:mean f16:cls; do
  dtype="${cfg%%:*}" pooling="${cfg##*:}" name="${cfg/:/_}"
  line="$("$gen" --vocab=engine/tokenizer/testdata/ggml-vocab-bert-bge.gguf \
          --out="$work/$name.gguf" --dtype="$dtype" --pooling="$pooling" --seed="$seed" \
          --matrix_std="$matrix_std" --embd_std="$embd_std")"
  fnv="${line#fnv1a64=}" fnv="${fnv%% *}"
  echo "$name: $line"
  models+="${models:+,}{\"name\":\"$name\",\"dtype\":\"$dtype\",\"pooling\":\"$pooling\",\"path\":\"$work/$name.gguf\",\"fnv1a64\":\"$fnv\"}"
done
cat > "$work/spec.json" <<JSON
{"generator": {"seed": $seed, "matrix_std": $matrix_std, "embd_std": $embd_std,
               "vocab": "engine/tokenizer/testdata/ggml-vocab-bert-bge.gguf"},
 "models": [$models]}
JSON
NODE_LLAMA_CPP_DIR="$nlc" node tests/engine/tools/bert_golden.mjs \
  tests/engine/testdata/bert_golden.json "$work/spec.json"
