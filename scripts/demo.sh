#!/usr/bin/env bash
# The main job, as far as it is built. Today: the `tessera` server with
# authentication, API keys, health and reflection, permission-filtered hybrid
# search over a sample company's documents, driven by an outside gRPC client
# (Debian's python3-grpcio), Acme's Google Drive synced by its change feed (a
# faithful fake Drive), Gmail (Ann's and Bob's mailboxes) and SharePoint (a
# finance site and the intranet), agents imported from JSON answering Ann, Bob
# and Eve with citations from what each may see, an MCP tool call against the
# reference filesystem server, and the inference engine streaming text.
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
bazel build --disk_cache="$cache_dir" //services/gateway:tessera //connectors/drive:fake_drive \
  //connectors/gmail:fake_gmail //connectors/sharepoint:fake_graph 2>&1 | tail -1
tessera="$(bazel info bazel-bin 2>/dev/null)/services/gateway/tessera"
fake_drive="$(bazel info bazel-bin 2>/dev/null)/connectors/drive/fake_drive"
fake_gmail="$(bazel info bazel-bin 2>/dev/null)/connectors/gmail/fake_gmail"
fake_graph="$(bazel info bazel-bin 2>/dev/null)/connectors/sharepoint/fake_graph"
client="/usr/bin/python3 tests/e2e/reflection_client.py"

work="$(mktemp -d /tmp/tessera-demo.XXXXXX)"
data="$work/data"
server_pid=""
cleanup() {
  if [[ $keep -eq 0 ]]; then
    if [[ -n "$server_pid" ]]; then kill "$server_pid" 2>/dev/null || true; fi
    if [[ -n "${drive_pid:-}" ]]; then kill "$drive_pid" 2>/dev/null || true; fi
    if [[ -n "${gmail_pid:-}" ]]; then kill "$gmail_pid" 2>/dev/null || true; fi
    if [[ -n "${graph_pid:-}" ]]; then kill "$graph_pid" 2>/dev/null || true; fi
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
# The engine serves the one real generative model we may ship: stories260K (llama2.c's
# TinyStories Llama). It writes children's stories; it cannot answer questions.
cat >"$work/engine.json" <<JSON
{"device": "cpu", "models": [{"id": "stories", "path": "$PWD/engine/model/testdata/stories260K.gguf", "kv_cache_mb": 16}]}
JSON
show "engine config: $(cat "$work/engine.json")"
"$tessera" serve --data_dir="$data" --listen=127.0.0.1:0 --port_file="$work/port" \
  --engine_config="$work/engine.json" >"$work/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 1 200); do [[ -s "$work/port" ]] && break; sleep 0.05; done
[[ -s "$work/port" ]] || { cat "$work/server.log"; echo "server did not start" >&2; exit 1; }
addr="127.0.0.1:$(cat "$work/port")"
echo "serving on $addr (log: $work/server.log)"

step "Health, no key needed"
show "health"; $client "$addr" health
show "health tessera.v1.AdminService"; $client "$addr" health tessera.v1.AdminService
show "health tessera.v1.RetrievalService"; $client "$addr" health tessera.v1.RetrievalService
show "health tessera.v1.EngineService"; $client "$addr" health tessera.v1.EngineService

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

step "Knowledge: a collection, seven documents with their ACLs (examples/acme/documents.json)"
TESSERA_KEY="$admin_key" $client "$addr" call tessera.v1.RetrievalService/CreateCollection \
  '{"collection": {"name": "acme", "description": "Acme demo company"}}' | /usr/bin/python3 -c '
import json, sys; c = json.load(sys.stdin)["collection"]
print("collection %s: embedding model %s (%s dims), index %s" % (c["name"], c["embeddingModel"], c["embeddingDimensions"], c["index"]["faissFactory"]))'
TESSERA_KEY="$admin_key" $client "$addr" call tessera.v1.RetrievalService/IngestDocuments \
  "$(cat examples/acme/documents.json)" | /usr/bin/python3 -c '
import json, sys
for r in json.load(sys.stdin)["results"]:
    print("  %-26s %-26s %s chunk(s)" % (r["externalId"], r["status"], r.get("chunkCount", 0)))'

hits() {
  /usr/bin/python3 -c '
import json, sys
hits = json.load(sys.stdin).get("hits", [])
if not hits: print("  (no results)")
for i, h in enumerate(hits, 1):
    s = h.get("scores", {})
    print("  %d. %-30s bm25=%-6s vector=%-6s fused=%.4f  %s" % (i, h["title"],
          "%.3f" % s["bm25"] if "bm25" in s else "-", "%.3f" % s["vector"] if "vector" in s else "-",
          s.get("fused", 0), h["uri"]))'
}
question='{"collections": ["acme"], "query": "What is the Q3 budget?", "topK": 4}'
step "The same question, asked by three people: hybrid search, filtered by each one's permissions"
show "Ann (finance)";       TESSERA_KEY="$ann_key" $client "$addr" call tessera.v1.RetrievalService/Search "$question" | hits
show "Bob (engineering)";   TESSERA_KEY="$bob_key" $client "$addr" call tessera.v1.RetrievalService/Search "$question" | hits
eve_key=$("$tessera" admin create-key --data_dir="$data" --principal=eve@partner.example 2>/dev/null)
show "Eve (outside Acme)";  TESSERA_KEY="$eve_key" $client "$addr" call tessera.v1.RetrievalService/Search "$question" | hits
show "Bob asks as Ann (a user key may not)"
TESSERA_KEY="$bob_key" $client "$addr" call tessera.v1.RetrievalService/Search \
  '{"collections": ["acme"], "query": "budget", "principal": {"user": "ann@acme.example"}}' || true

step "Acme's Google Drive, Gmail and SharePoint, synced by their change feeds with their permissions (faithful fakes)"
"$fake_drive" >"$work/drive.url" 2>"$work/drive.log" </dev/null &
drive_pid=$!
"$fake_gmail" >"$work/gmail.url" 2>"$work/gmail.log" &
gmail_pid=$!
"$fake_graph" >"$work/graph.url" 2>"$work/graph.log" &
graph_pid=$!
for _ in $(seq 1 100); do [[ -s "$work/drive.url" && -s "$work/gmail.url" && -s "$work/graph.url" ]] && break; sleep 0.05; done
graph_url="$(head -1 "$work/graph.url")"
drive_url="$(head -1 "$work/drive.url")"
gmail_url="$(head -1 "$work/gmail.url")"
cat >"$work/drive.json" <<JSON
{"type": "drive", "interval": "5m", "collection": "drive", "drive": {"api_base": "$drive_url", "token": "demo-token"}}
JSON
cat >"$work/gmail.json" <<JSON
{"type": "gmail", "interval": "5m", "collection": "mail",
 "gmail": {"api_base": "$gmail_url", "token": "demo-token", "mailboxes": ["ann@acme.example", "bob@acme.example"]}}
JSON
show "tessera connector add drive --config=drive.json --name=acme-drive --sync_config=sync.json"
"$tessera" connector add drive --config="$work/drive.json" --name=acme-drive --sync_config="$work/sync.json"
show "tessera connector add gmail --config=gmail.json --name=acme-mail --sync_config=sync.json"
"$tessera" connector add gmail --config="$work/gmail.json" --name=acme-mail --sync_config="$work/sync.json"
cat >"$work/sharepoint.json" <<JSON
{"type": "sharepoint", "interval": "15m", "collection": "sharepoint",
 "sharepoint": {"api_base": "$graph_url", "token": "demo-token", "tenant_domain": "acme.example"}}
JSON
show "tessera connector add sharepoint --config=sharepoint.json --name=acme-sharepoint --sync_config=sync.json"
"$tessera" connector add sharepoint --config="$work/sharepoint.json" --name=acme-sharepoint --sync_config="$work/sync.json"
show "tessera sync --sync_config=sync.json --once   (admin key; the three fakes on localhost)"
TESSERA_KEY="$admin_key" "$tessera" sync --sync_config="$work/sync.json" --server="$addr" --once \
  --log_level=warning --sync_progress=plain
show "tessera connector list --sync_config=sync.json"
"$tessera" connector list --sync_config="$work/sync.json"
drive_q='{"collections": ["drive"], "query": "budget salaries vacation offsite", "topK": 5}'
show "Ann (finance) searches the synced Drive"; TESSERA_KEY="$ann_key" $client "$addr" call tessera.v1.RetrievalService/Search "$drive_q" | hits
show "Bob (engineering): the finance shared drive stays hidden"; TESSERA_KEY="$bob_key" $client "$addr" call tessera.v1.RetrievalService/Search "$drive_q" | hits
echo "(\"Offsite ideas\" is shared by link only: not public, so nobody finds it by search.)"

step "Agents, defined in JSON (examples/agents), imported and versioned"
show "tessera agent import examples/agents/company-search.json --agent_id=acme-search   (as the admin)"
TESSERA_KEY="$admin_key" "$tessera" agent import examples/agents/company-search.json --agent_id=acme-search --server="$addr"
show "the same file again: a new version, the old one stays readable"
TESSERA_KEY="$admin_key" "$tessera" agent import examples/agents/company-search.json --agent_id=acme-search --server="$addr"
show "tessera agent import examples/agents/hr-assistant.json   (names mistral-7b, which this engine does not serve)"
TESSERA_KEY="$admin_key" "$tessera" agent import examples/agents/hr-assistant.json --server="$addr" || true
show "a definition with mistakes: every bad field is named"
printf '%s' '{"name": "Broken", "model": "extractive", "knowledge": {"collections": ["acme"], "topK": 90},
  "tools": [{"mcpServer": {"name": "files", "transport": "MCP_TRANSPORT_STDIO"}}], "maxIteration": 3}' >"$work/broken.json"
TESSERA_KEY="$admin_key" "$tessera" agent import "$work/broken.json" --server="$addr" || true
show "tessera agent list   (as Ann)"
TESSERA_KEY="$ann_key" "$tessera" agent list --server="$addr"

step "Ann and Bob ask the same agent the same question: cited answers from what each may see"
echo "(No generative model that can call tools ships with the demo, so this agent answers"
echo " extractively: the best passages, cited. With a Mistral model served by the engine or an"
echo " OpenAI-compatible server, the same agents run the tool-calling loop; see docs/AGENTS.md.)"
show "tessera ask acme-search \"What is the Q3 budget?\"   (as Ann, finance)"
TESSERA_KEY="$ann_key" "$tessera" ask acme-search "What is the Q3 budget?" --server="$addr"
show "the same, as Bob (engineering)"
TESSERA_KEY="$bob_key" "$tessera" ask acme-search "What is the Q3 budget?" --server="$addr"
show "as Eve (outside Acme: the agent is shared tenant-wide, the documents are not)"
TESSERA_KEY="$eve_key" "$tessera" ask acme-search "What is the Q3 budget?" --server="$addr"

step "An MCP tool call: the reference filesystem server, started over stdio"
if [[ -x node_modules/.bin/mcp-server-filesystem ]]; then
  mkdir -p "$work/runbooks"
  printf 'Restart the sync daemon with: tessera sync --sync_config=/etc/tessera/sync.json\n' >"$work/runbooks/sync.md"
  cat >"$work/mcp.json" <<JSON
{"servers": {"files": {"transport": "stdio", "command": "$PWD/node_modules/.bin/mcp-server-filesystem",
                       "args": ["$work/runbooks"]}}}
JSON
  show "tessera mcp call --mcp_config=mcp.json --tool=read_text_file --args='{\"path\": \"$work/runbooks/sync.md\"}'"
  "$tessera" mcp call --mcp_config="$work/mcp.json" --tool=read_text_file \
    --args="{\"path\": \"$work/runbooks/sync.md\"}" --log_level=warning || true
else
  echo "(node_modules missing: run scripts/setup.sh to install the MCP reference servers)"
fi

step "The inference engine: the models it serves, and text streamed through the gateway"
show "EngineService/ListModels as Ann"; TESSERA_KEY="$ann_key" $client "$addr" call tessera.v1.EngineService/ListModels '{}'
show "tessera generate \"Once upon a time\" --temperature=0 --max_tokens=60   (as Ann)"
TESSERA_KEY="$ann_key" "$tessera" generate "Once upon a time" --server="$addr" --temperature=0 --max_tokens=60
show "the same, sampled (temperature 0.8, seed 7)"
TESSERA_KEY="$ann_key" "$tessera" generate "Once upon a time" --server="$addr" --temperature=0.8 --seed=7 --max_tokens=60
show "a model the engine does not have"
TESSERA_KEY="$ann_key" "$tessera" generate "hi" --server="$addr" --model=mistral-7b || true

step "Services of later milestones answer plainly"
show "SyncService/ListConnectors as the admin"; TESSERA_KEY="$admin_key" $client "$addr" call tessera.v1.SyncService/ListConnectors '{}' || true

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

What runs today: the server, its authentication and keys, the v1 contract,
permission-exact hybrid search (BM25 + vectors from the built-in lexical
embedder), Google Drive, Gmail and SharePoint synced through their change
feeds with their permissions (`tessera sync`, `tessera connector add|list`),
agents defined in JSON that answer each user with citations from what that
user may see (extractive here; the tool-calling loop with a Mistral model or
an OpenAI-compatible server, see docs/AGENTS.md), MCP tools, and the inference
engine (here with the only real weights we ship, a 260K-parameter story model;
point --engine_config at your own GGUF or safetensors models, see
docs/ENGINE.md).
MSG
