// Drives Tessera's MCP server with the official TypeScript SDK client
// (@modelcontextprotocol/sdk, legacy era 2025-11-25) over Streamable HTTP:
//   node sdk_client.mjs URL KEY
// Prints one JSON line with what it saw; exits non-zero on any failure.
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";

const [url, key] = process.argv.slice(2);
const transport = new StreamableHTTPClientTransport(new URL(url), {
  requestInit: { headers: { Authorization: `Bearer ${key}` } },
});
const client = new Client({ name: "sdk-interop", version: "1.0.0" });
await client.connect(transport);
const tools = await client.listTools();
// callTool validates structuredContent against the tool's outputSchema.
const result = await client.callTool({ name: "search", arguments: { query: "revenue", top_k: 5 } });
let unknownTool = null;
try {
  await client.callTool({ name: "no-such-tool", arguments: {} });
} catch (e) {
  unknownTool = e.code ?? String(e);
}
await client.ping();
const out = {
  protocolVersion: transport.protocolVersion,
  sessionId: transport.sessionId,
  server: client.getServerVersion(),
  tools: tools.tools.map((t) => t.name),
  text: result.content[0].text,
  structured: result.structuredContent,
  unknownTool,
};
await transport.terminateSession();
await client.close();
console.log(JSON.stringify(out));
