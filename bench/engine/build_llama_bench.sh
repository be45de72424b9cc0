#!/usr/bin/env bash
# Builds native llama-bench and llama-batched-bench from the llama.cpp source that the pinned node-llama-cpp npm package
# carries (node_modules/node-llama-cpp/llama/gitRelease.bundle), once, into a cache folder.
# Nothing it fetches or builds is committed. Prints the folder holding both binaries on its last
# line (CACHE_DIR/build/bin).
#
#   build_llama_bench.sh NODE_DIR CACHE_DIR
#     NODE_DIR   bench/engine/node (holds package.json; `npm ci` is run there when
#                node_modules is missing; the registry must be reachable then)
#     CACHE_DIR  e.g. ~/.cache/tessera/llama.cpp-build (source in src/, build in build/)
set -euo pipefail
node_dir=$1
cache=$2
bindir="$cache/build/bin"
if [[ -x "$bindir/llama-bench" && -x "$bindir/llama-batched-bench" ]]; then
  echo "$bindir"
  exit 0
fi
for tool in git cmake make c++; do
  command -v "$tool" >/dev/null || { echo "build_llama_bench: '$tool' is missing (apt-get install git cmake build-essential)" >&2; exit 1; }
done
bundle="$node_dir/node_modules/node-llama-cpp/llama/gitRelease.bundle"
if [[ ! -f "$bundle" ]]; then
  echo "build_llama_bench: $bundle missing; running npm ci in $node_dir" >&2
  (cd "$node_dir" && npm ci --omit=optional --ignore-scripts >&2)
fi
mkdir -p "$cache"
if [[ ! -f "$cache/src/CMakeLists.txt" ]]; then
  rm -rf "$cache/src"
  git clone --quiet "$bundle" "$cache/src" >&2
fi
echo "build_llama_bench: llama.cpp $(git -C "$cache/src" describe --tags --always 2>/dev/null || echo '?') -> $cache/build (a few minutes)" >&2
cmake -S "$cache/src" -B "$cache/build" -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON \
  -DLLAMA_CURL=OFF -DGGML_OPENMP=ON -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
  -DLLAMA_BUILD_SERVER=OFF -DBUILD_SHARED_LIBS=OFF >&2
cmake --build "$cache/build" --target llama-bench llama-batched-bench -j"$(nproc)" >&2
for b in llama-bench llama-batched-bench; do
  [[ -x "$bindir/$b" ]] || { echo "build_llama_bench: $bindir/$b was not produced" >&2; exit 1; }
done
echo "$bindir"
