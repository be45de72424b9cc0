#!/usr/bin/env bash
# The main job, as far as it is built. Today that is the foundation slice:
# the `tessera` server with authentication, API keys, health and reflection,
# driven by an outside gRPC client (Debian's python3-grpcio). Syncing a
# sample company and asking agents cited questions come with the retrieval,
# connector, engine and agent milestones; this script grows with them.
#
# Usage: scripts/demo.sh [--keep]   (--keep leaves the server running)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

keep=0
for a in "$@"; do
  case "$a" in
    --keep) keep=1 ;;
    *) echo "usage: scripts/demo.sh [--keep]" >&2; exit 2 ;;
  esac
done

./scripts/setup.sh
cache_dir="${TESSERA_BAZEL_CACHE:-$HOME/.cache/tessera/bazel-disk-cache}"
mkdir -p "$cache_dir"
echo "== building //services/gateway:tessera"
bazel build --disk_cache="$cache_dir" //services/gateway:tessera 2>&1 | tail -1
tessera="$(bazel info bazel-bin 2>/dev/null)/services/gateway/tessera"
client="/usr/bin/python3 tests/e2e/reflection_client.py"

work="$(mktemp -d /tmp/tessera-demo.XXXXXX)"
data="$work/data"
server_pid=""
cleanup() {
  if [[ $keep -eq 0 ]]; then
    if [[ -n "$server_pid" ]]; then kill "$server_pid" 2>/dev/null || true; fi
    rm -rf "$work"
  fi
}
trap cleanup EXIT

if [[ -t 1 ]]; then bold=$'\033[1m'; plain=$'\033[0m'; else bold=""; plain=""; fi
step() { printf '\n%s== %s%s\n' "$bold" "$*" "$plain"; }
show() { printf '$ %s\n' "$*"; }

step "Keys for the demo company (stored hashed in $data/admin.db)"
admin_key=$("$tessera" admin create-key --data_dir="$data" --principal=it@acme.example --role=admin --description="demo admin")
ann_key=$("$tessera" admin create-key --data_dir="$data" --principal=ann@acme.example --groups=finance@acme.example,all@acme.example)
bob_key=$("$tessera" admin create-key --data_dir="$data" --principal=bob@acme.example --groups=engineering@acme.example,all@acme.example)
"$tessera" admin list-keys --data_dir="$data"

step "Start tessera serve (all services in one process, localhost, free port)"
"$tessera" serve --data_dir="$data" --listen=127.0.0.1:0 --port_file="$work/port" >"$work/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 1 200); do [[ -s "$work/port" ]] && break; sleep 0.05; done
[[ -s "$work/port" ]] || { cat "$work/server.log"; echo "server did not start" >&2; exit 1; }
addr="127.0.0.1:$(cat "$work/port")"
echo "serving on $addr (log: $work/server.log)"

step "Health, no key needed"
show "health"; $client "$addr" health
show "health tessera.v1.AdminService"; $client "$addr" health tessera.v1.AdminService
show "health tessera.v1.RetrievalService"; $client "$addr" health tessera.v1.RetrievalService

step "The API, discovered by reflection (with Ann's key)"
TESSERA_KEY="$ann_key" $client "$addr" list

step "Each key acts as its own principal"
show "WhoAmI as Ann"; TESSERA_KEY="$ann_key" $client "$addr" call tessera.v1.AdminService/WhoAmI '{}'
show "WhoAmI as Bob"; TESSERA_KEY="$bob_key" $client "$addr" call tessera.v1.AdminService/WhoAmI '{}'

step "No key, or a wrong one: refused"
show "WhoAmI without a key"; TESSERA_KEY= $client "$addr" call tessera.v1.AdminService/WhoAmI '{}' || true
show "WhoAmI with a forged key"; TESSERA_KEY="${ann_key%????}XXXX" $client "$addr" call tessera.v1.AdminService/WhoAmI '{}' || true

step "An admin creates a key over the API; a user may not"
created=$(TESSERA_KEY="$admin_key" $client "$addr" call tessera.v1.AdminService/CreateApiKey \
  '{"principal": {"user": "carol@acme.example", "groups": ["finance@acme.example"]}, "description": "created over gRPC"}')
carol_key=$(printf '%s' "$created" | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["secret"])')
echo "created key $(printf '%s' "$created" | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["key"]["keyId"])') for carol"
show "WhoAmI as Carol"; TESSERA_KEY="$carol_key" $client "$addr" call tessera.v1.AdminService/WhoAmI '{}'
show "CreateApiKey with Ann's user key"; TESSERA_KEY="$ann_key" $client "$addr" call tessera.v1.AdminService/CreateApiKey '{"principal": {"user": "eve@acme.example"}}' || true

step "Services of later milestones answer plainly"
show "RetrievalService/Search as Ann"; TESSERA_KEY="$ann_key" $client "$addr" call tessera.v1.RetrievalService/Search '{"query": "Q3 budget"}' || true

if [[ $keep -eq 1 ]]; then
  step "Left running: pid $server_pid on $addr, data in $data"
  exit 0
fi

step "Graceful shutdown on SIGTERM"
kill -TERM "$server_pid"
wait "$server_pid" && echo "tessera exited cleanly" || echo "tessera exited with $?"
server_pid=""
tail -n 3 "$work/server.log"

cat <<'MSG'

This is the foundation slice of Tessera: the server, its authentication and
keys, and the v1 contract (see proto/tessera/v1). Sync, hybrid search, the
engine and agents with cited answers arrive with their milestones; this demo
will then sync a sample company and ask questions as Ann and Bob.
MSG
