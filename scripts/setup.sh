#!/usr/bin/env bash
# Installs everything Tessera needs on Debian 12: the Debian packages it builds
# and tests with, and the npm tools pinned in package-lock.json. Idempotent and
# quick when everything is present (no apt-get call at all then).
#
# Usage: scripts/setup.sh        (as root, or with sudo available)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# Every Debian package the project uses. Keep in sync with WORKSPACE.
PACKAGES=(
  # build
  bazel-bootstrap build-essential pkg-config
  # gRPC, protobuf, Abseil
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler libabsl-dev
  # storage, search, numerics
  libsqlite3-dev libfaiss-dev libopenblas-dev
  # network, crypto
  libcurl4-openssl-dev libssl-dev openssl libsodium-dev ca-certificates
  # JSON, tokenizers
  nlohmann-json3-dev libsentencepiece-dev libicu-dev
  libvalijson-dev  # JSON Schema checks of MCP structuredContent (header-only)
  libcpp-httplib-dev  # the MCP server's Streamable HTTP endpoint
  # libFuzzer targets of the engine loaders (engine/model/fuzz/run_fuzzers.sh)
  clang
  # document parsing (connectors)
  libpoppler-cpp-dev libgmime-3.0-dev libzip-dev libpugixml-dev libgumbo-dev
  # tests and benchmarks
  libgtest-dev libgmock-dev libbenchmark-dev
  libhnswlib-dev  # header-only ANN peer for bench/retrieval
  # end-to-end tests: a gRPC client we did not write
  python3 python3-grpcio python3-protobuf
  # npm tools (buf); Node 20 may already come with the machine
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if ! command -v npm >/dev/null 2>&1; then
  missing+=(nodejs npm)
fi

SUDO=""
if [[ "$(id -u)" -ne 0 ]]; then SUDO="sudo"; fi

if [[ ${#missing[@]} -gt 0 ]]; then
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# npm tools, pinned by package-lock.json; reinstalled only when the lock changes.
stamp=node_modules/.tessera-lock-stamp
if [[ ! -f "$stamp" ]] || ! cmp -s package-lock.json "$stamp"; then
  echo "setup: npm ci"
  npm ci --no-audit --no-fund --loglevel=error >/dev/null
  cp package-lock.json "$stamp"
fi

echo "setup: OK"
