// A dual-era MCP peer built on the TypeScript SDK v2 (@modelcontextprotocol/
// server 2.4.0): speaks 2026-07-28 and falls back to 2025-11-25. Used by
// interop_test to check our era negotiation against a real implementation.
//   node modern_server.mjs          stdio (serveStdio: server/discover or initialize)
//   PORT=n node modern_server.mjs http   Streamable HTTP on 127.0.0.1:n/mcp
import { createServer } from 'node:http';
import { McpServer, createMcpHandler } from '@modelcontextprotocol/server';
import { serveStdio } from '@modelcontextprotocol/server/stdio';
import { toNodeHandler } from '@modelcontextprotocol/node';
import * as z from 'zod';

function factory() {
  const server = new McpServer({ name: 'tessera-modern-peer', version: '1.0.0' });
  server.registerTool(
    'add',
    {
      description: 'Add two numbers',
      inputSchema: z.object({ a: z.number(), b: z.number() }),
      outputSchema: z.object({ sum: z.number() }),
    },
    async ({ a, b }) => ({ content: [{ type: 'text', text: String(a + b) }], structuredContent: { sum: a + b } }),
  );
  server.registerTool(
    'greet',
    { description: 'Greets someone', inputSchema: z.object({ name: z.string() }) },
    async ({ name }) => ({ content: [{ type: 'text', text: `Bonjour, ${name}` }] }),
  );
  return server;
}

if (process.argv[2] === 'http') {
  const handler = toNodeHandler(createMcpHandler(factory));
  const port = Number(process.env.PORT);
  createServer((req, res) => {
    if (!req.url.startsWith('/mcp')) {
      res.writeHead(404).end();
      return;
    }
    handler(req, res);
  }).listen(port, '127.0.0.1', () => console.error(`modern peer listening on ${port}`));
} else {
  serveStdio(factory);
}
