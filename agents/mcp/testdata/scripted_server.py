#!/usr/bin/env python3
"""A scripted, sometimes hostile MCP stdio server for the client's unit tests.

Speaks legacy MCP (and 2026-07-28 with --modern) over stdin/stdout. Each
tool triggers one behaviour the client must survive: slow progress, never
answering, dying mid-call, oversized or malformed output, floods, requests
the client never advertised. Flags:
  --modern            answer server/discover (2026-07-28 era, _meta required)
  --pages N           tools/list pages of N tools
  --silent            never answer anything
  --version V         answer initialize with protocolVersion V
  --stubborn          ignore stdin EOF and SIGTERM (tests SIGKILL)
  --log FILE          append every received line to FILE
"""
import json
import os
import signal
import sys
import time

args = sys.argv[1:]
def flag(name):
    return name in args
def opt(name, default=None):
    return args[args.index(name) + 1] if name in args else default

MODERN = flag("--modern")
SILENT = flag("--silent")
PAGE = int(opt("--pages", "0"))
VERSION = opt("--version")
LOG = opt("--log")
if flag("--stubborn"):
    signal.signal(signal.SIGTERM, signal.SIG_IGN)

OBJ = {"type": "object"}
TOOLS = [
    {"name": "echo", "description": "echo", "inputSchema": {"type": "object", "properties": {"message": {"type": "string"}}}},
    {"name": "env", "description": "env and cwd", "inputSchema": OBJ},
    {"name": "slow", "description": "progress then answer", "inputSchema": OBJ},
    {"name": "never", "description": "never answers", "inputSchema": OBJ},
    {"name": "die", "description": "exits mid-call", "inputSchema": OBJ},
    {"name": "huge", "description": "oversized result", "inputSchema": OBJ},
    {"name": "junk", "description": "malformed lines first", "inputSchema": OBJ},
    {"name": "flood", "description": "floods stdout and stderr", "inputSchema": OBJ},
    {"name": "hostile", "description": "sends requests we never advertised", "inputSchema": OBJ},
    {"name": "all_content", "description": "every content type", "inputSchema": OBJ},
    {"name": "exec_error", "description": "isError result", "inputSchema": OBJ},
    {"name": "good_structured", "description": "valid structuredContent", "inputSchema": OBJ,
     "outputSchema": {"$schema": "http://json-schema.org/draft-07/schema#", "type": "object",
                      "properties": {"sum": {"type": "number"}}, "required": ["sum"], "additionalProperties": False}},
    {"name": "bad_structured", "description": "invalid structuredContent", "inputSchema": OBJ,
     "outputSchema": {"type": "object", "properties": {"sum": {"type": "number"}}, "required": ["sum"]}},
    {"name": "list_changed", "description": "announces a tool list change", "inputSchema": OBJ},
    {"name": "bad name!", "description": "invalid name, must be skipped", "inputSchema": OBJ},
]

out = sys.stdout
def send(msg):
    out.write(json.dumps(msg) + "\n")
    out.flush()

def log(text):
    sys.stderr.write(text + "\n")
    sys.stderr.flush()

pending_replies = {}
def read_message():
    line = sys.stdin.readline()
    if not line:
        return None
    if LOG:
        with open(LOG, "a") as f:
            f.write(line)
    try:
        return json.loads(line)
    except ValueError:
        return {}

def result(id_, res):
    if MODERN:
        res = dict(res)
        res["resultType"] = "complete"
    send({"jsonrpc": "2.0", "id": id_, "result": res})

def error(id_, code, message, data=None):
    e = {"code": code, "message": message}
    if data is not None:
        e["data"] = data
    send({"jsonrpc": "2.0", "id": id_, "error": e})

def text(t):
    return {"content": [{"type": "text", "text": t}]}

def wait_for_replies(ids):
    got = {}
    while len(got) < len(ids):
        m = read_message()
        if m is None:
            sys.exit(0)
        if "id" in m and "method" not in m and m.get("id") in ids:
            got[m["id"]] = m
    return got

def call_tool(id_, name, arguments, meta):
    token = meta.get("progressToken")
    if name == "echo":
        result(id_, text("Echo: " + str(arguments.get("message", ""))))
    elif name == "env":
        result(id_, text(json.dumps({"value": os.environ.get(arguments.get("name", ""), None),
                                     "home": os.environ.get("SECRET_OF_PARENT"), "cwd": os.getcwd()})))
    elif name == "slow":
        steps = int(arguments.get("steps", 3))
        for i in range(steps):
            time.sleep(float(arguments.get("delay", 0.1)))
            if token is not None:
                send({"jsonrpc": "2.0", "method": "notifications/progress",
                      "params": {"progressToken": token, "progress": i + 1, "total": steps, "message": "step %d" % (i + 1)}})
        result(id_, text("slow done"))
    elif name == "never":
        log("never: holding request %s" % id_)
    elif name == "die":
        log("die: about to crash")
        os._exit(3)
    elif name == "huge":
        result(id_, text("x" * int(arguments.get("bytes", 2000000))))
    elif name == "junk":
        out.write("this is not json\n")
        out.write("{\"unterminated\": \n")
        out.write("[1,2,3]\n")
        out.write("{\"jsonrpc\":\"2.0\"}\n")
        out.write("\n")
        out.flush()
        result(id_, text("after junk"))
    elif name == "flood":
        junk = "garbage " * 20 + "\n"
        out.write(junk * 20000)
        out.flush()
        sys.stderr.write(("E" * 100 + "\n") * 20000)
        sys.stderr.flush()
        result(id_, text("after flood"))
    elif name == "hostile":
        send({"jsonrpc": "2.0", "id": 0, "method": "sampling/createMessage", "params": {"messages": []}})
        send({"jsonrpc": "2.0", "id": "e1", "method": "elicitation/create", "params": {}})
        send({"jsonrpc": "2.0", "id": 1, "method": "roots/list"})
        send({"jsonrpc": "2.0", "id": 2, "method": "ping"})
        # A response to a request the client never made, and a duplicate id.
        send({"jsonrpc": "2.0", "id": 987654, "result": {}})
        got = wait_for_replies([0, "e1", 1, 2])
        summary = {str(k): ("error %d" % v["error"]["code"]) if "error" in v else v["result"] for k, v in got.items()}
        result(id_, text(json.dumps(summary, sort_keys=True)))
    elif name == "all_content":
        result(id_, {"content": [
            {"type": "text", "text": "hello", "annotations": {"audience": ["user"], "priority": 0.5}},
            {"type": "image", "data": "iVBORw0KGgo=", "mimeType": "image/png"},
            {"type": "audio", "data": "UklGRg==", "mimeType": "audio/wav"},
            {"type": "resource_link", "uri": "file:///tmp/a.txt", "name": "a.txt", "mimeType": "text/plain"},
            {"type": "resource", "resource": {"uri": "demo://r/1", "mimeType": "text/plain", "text": "inline"}},
            {"type": "resource", "resource": {"uri": "demo://r/2", "mimeType": "application/octet-stream", "blob": "AAE="}},
            {"type": "hologram", "payload": 1}]})
    elif name == "exec_error":
        result(id_, {"content": [{"type": "text", "text": "division by zero"}], "isError": True})
    elif name == "good_structured":
        result(id_, {"content": [{"type": "text", "text": "{\"sum\": 42}"}], "structuredContent": {"sum": 42}})
    elif name == "bad_structured":
        result(id_, {"content": [{"type": "text", "text": "{\"sum\": \"many\"}"}], "structuredContent": {"sum": "many"}})
    elif name == "list_changed":
        send({"jsonrpc": "2.0", "method": "notifications/tools/list_changed"})
        result(id_, text("changed"))
    else:
        error(id_, -32602, "Unknown tool: " + name)

def main():
    initialized = False
    while True:
        m = read_message()
        if m is None:
            if flag("--stubborn"):
                while True:
                    time.sleep(1)
            return
        if SILENT or "method" not in m:
            continue
        method, id_ = m["method"], m.get("id")
        params = m.get("params") or {}
        meta = params.get("_meta") or {}
        if id_ is None:
            if method == "notifications/cancelled":
                log("cancelled %s" % params.get("requestId"))
            continue
        if MODERN and method != "initialize":
            if meta.get("io.modelcontextprotocol/protocolVersion") != "2026-07-28":
                error(id_, -32602, "Request is missing the required _meta envelope")
                continue
        if method == "server/discover":
            if MODERN:
                result(id_, {"supportedVersions": ["2026-07-28"], "capabilities": {"tools": {"listChanged": True}},
                             "_meta": {"io.modelcontextprotocol/serverInfo": {"name": "scripted-modern", "version": "1"}}})
            else:
                error(id_, -32601, "Method not found")
        elif method == "initialize":
            requested = params.get("protocolVersion")
            result(id_, {"protocolVersion": VERSION or requested, "capabilities": {"tools": {"listChanged": True}},
                         "serverInfo": {"name": "scripted", "version": "1"}})
        elif method == "ping":
            result(id_, {})
        elif method == "tools/list":
            if PAGE:
                start = int(params.get("cursor", "0"))
                page = TOOLS[start:start + PAGE]
                res = {"tools": page}
                if start + PAGE < len(TOOLS):
                    res["nextCursor"] = str(start + PAGE)
                result(id_, res)
            else:
                result(id_, {"tools": TOOLS})
        elif method == "tools/call":
            call_tool(id_, params.get("name"), params.get("arguments") or {}, meta)
        else:
            error(id_, -32601, "Method not found")

main()
