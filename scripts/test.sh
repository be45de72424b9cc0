#!/usr/bin/env bash
# Installs what is missing, lints the wire contract, builds everything and runs
# every test. Ends with "N passed, N failed" alone on the last line (counted
# from Bazel's test summary, plus the proto lint as one check); the exit code
# is non-zero when anything failed or did not build.
#
# Usage: scripts/test.sh [extra bazel flags, e.g. --config=asan]
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

./scripts/setup.sh || { echo "setup failed"; echo "0 passed, 1 failed"; exit 1; }

passed=0
failed=0

echo "== buf lint (proto/)"
if ./scripts/buf_lint.sh; then passed=$((passed + 1)); else failed=$((failed + 1)); fi

# A disk cache outside the workspace: a second clone on this machine (as CI
# makes) reuses what the first one built.
cache_dir="${TESSERA_BAZEL_CACHE:-$HOME/.cache/tessera/bazel-disk-cache}"
mkdir -p "$cache_dir"

echo "== bazel test //..."
log="$(mktemp)"
bazel test //... --disk_cache="$cache_dir" --keep_going "$@" 2>&1 | tee "$log"
bazel_rc=${PIPESTATUS[0]}

# Summary lines look like: "//pkg:name   (cached) PASSED in 0.3s",
# "//pkg:name   FAILED in 2.0s", "NO STATUS", "FAILED TO BUILD", "TIMEOUT".
summary="$(grep -E '^//[^ ]+ +' "$log" | grep -E '(PASSED|FLAKY|FAILED|NO STATUS|TIMEOUT|INCOMPLETE|SKIPPED)' || true)"
p=$(printf '%s\n' "$summary" | grep -cE ' (PASSED|FLAKY)' || true)
f=$(printf '%s\n' "$summary" | grep -E '^//' | grep -cvE ' (PASSED|FLAKY)' || true)
passed=$((passed + p))
failed=$((failed + f))
# A build or analysis failure before any test ran still counts as a failure.
if [[ $bazel_rc -ne 0 && $f -eq 0 ]]; then failed=$((failed + 1)); fi
rm -f "$log"

if [[ "${CI:-}" == "true" ]]; then bazel shutdown >/dev/null 2>&1 || true; fi

echo "$passed passed, $failed failed"
[[ $failed -eq 0 && $bazel_rc -eq 0 ]]
