#!/usr/bin/env bash
# Lints the wire contract (proto/) with buf, as configured in buf.yaml, and checks that it builds
# and is formatted. Prints every finding and exits non-zero if there is any.
#
# Usage: scripts/buf_lint.sh        (from anywhere; runs at the repository root)
# buf comes from npm (@bufbuild/buf, pinned in package.json); run `npm ci` once first.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

buf=node_modules/.bin/buf
if [[ ! -x "${buf}" ]]; then
  echo "buf_lint: ${buf} not found; run 'npm ci' at the repository root first" >&2
  exit 2
fi

status=0
"${buf}" build -o /dev/null || status=1
"${buf}" lint || status=1
if ! "${buf}" format --diff --exit-code; then
  echo "buf_lint: proto files are not formatted; run '${buf} format -w'" >&2
  status=1
fi

if [[ "${status}" -eq 0 ]]; then
  echo "buf_lint: OK ($("${buf}" --version))"
fi
exit "${status}"
