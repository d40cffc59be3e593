#!/usr/bin/env node
// A minimal signalling relay on Node's `ws` (Debian package node-ws): a REFERENCE POINT for `make bench`
// (docs/benchmarks.md, sections 1-3), not a product. It stands for what a user might write instead of
// running the rendezvous server: no ring, no challenge, no signatures, no rate limits, no liveness pings,
// no limits but `ws`'s own; small and correct for what it does.
//
// Protocol (subprotocol "bc-minimal"; the load generator's `--protocol minimal`), JSON text frames:
//   {"type":"register"}                          → {"type":"registered","peerId":"<12 hex>"}
//   {"type":"signal","to":ID,"intentId":…,"signal":{…}}
//                                                → to ID: {"type":"signal","from":<sender>,"intentId":…,"signal":{…}}
//   a signal before register                     → {"type":"error","code":"not-registered"}
//   a signal to an ID nobody holds               → {"type":"error","code":"unknown-peer"}
//   anything else, or text that is not JSON      → {"type":"error","code":"bad-message"}
// A connection registers once (a second register gets its ID again); its ID is freed when it closes.
//
// Usage: node bench/node-relay.js [PORT]   (0 or none: a free port). Listens on 127.0.0.1 and prints
// "listening on PORT" once ready; SIGTERM or SIGINT stops it.
'use strict';
const { WebSocketServer } = require('/usr/share/nodejs/ws');

const port = Number(process.argv[2] || 0);
const peers = new Map();   // peer ID (12 hex) → WebSocket
let nextId = 1;

const server = new WebSocketServer({
  host: '127.0.0.1',
  port,
  perMessageDeflate: false,                 // as the rendezvous server's default
  maxPayload: 65536,                        // the rendezvous server's --max-message-bytes default
  handleProtocols: (protocols) => (protocols.has('bc-minimal') ? 'bc-minimal' : false),
});

function send(ws, object) { ws.send(JSON.stringify(object)); }

server.on('connection', (ws) => {
  let id = null;
  ws.on('message', (data, isBinary) => {
    let m;
    try { m = JSON.parse(isBinary ? '' : data.toString()); } catch { m = null; }
    if (m === null || typeof m !== 'object') return send(ws, { type: 'error', code: 'bad-message' });
    if (m.type === 'register') {
      if (id === null) {
        id = (nextId++).toString(16).padStart(12, '0');
        peers.set(id, ws);
      }
      return send(ws, { type: 'registered', peerId: id });
    }
    if (m.type === 'signal' && typeof m.to === 'string' && m.signal !== null && typeof m.signal === 'object') {
      if (id === null) return send(ws, { type: 'error', code: 'not-registered' });
      const target = peers.get(m.to);
      if (target === undefined) return send(ws, { type: 'error', code: 'unknown-peer' });
      return send(target, { type: 'signal', from: id, intentId: m.intentId, signal: m.signal });
    }
    return send(ws, { type: 'error', code: 'bad-message' });
  });
  ws.on('close', () => { if (id !== null) peers.delete(id); });
  ws.on('error', () => {});
});

server.on('listening', () => { console.log(`listening on ${server.address().port}`); });
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => process.exit(0));
