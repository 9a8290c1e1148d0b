#!/usr/bin/env node
// The example contract (DESIGN.md) served by quicklane on Node's own loop:
//   GET  /ping         → 200 {"message":"pong"}  native static route, never enters JS
//   GET  /hello/:name  → 200 {"hello":"<name>"}  JS handler
//   POST /echo         → 200 the JSON body       JS handler; invalid JSON → 400
//   GET  /ws/echo      → WebSocket: each message back as it came (text as text, binary as binary)
//   GET  /ws/chat/:room → WebSocket: each text message to the whole room, sender included,
//                        as {"room": ..., "from": <member number>, "text": ...}
//   anything else      → 404 / 405 from the core
// PORT (default 8080) selects the port; WORKERS > 1 forks that many node:cluster
// workers, each serving through the core on the same port (SO_REUSEPORT). A room
// then spans processes: each worker publishes to its own members and hands the
// message to the primary, which passes it to the other workers (member numbers
// stay distinct: worker i of W numbers its members i+1, i+1+W, i+1+2W, ...).
//
//   npm install ./bindings/node && node examples/node/hello.js
'use strict';
const cluster = require('node:cluster');

let quicklane;
try {
  quicklane = require('quicklane');
} catch {
  quicklane = require('../../bindings/node');  // running from a checkout
}

const port = Number(process.env.PORT || 8080);
const host = process.env.HOST || '127.0.0.1';
const workers = Math.max(1, Number(process.env.WORKERS || 1));

if (workers > 1 && cluster.isPrimary) {
  if (!quicklane.features.reusePort) {
    console.error('WORKERS > 1 needs a core with ql_server_options.reuse_port (see docs/node.md)');
    process.exit(1);
  }
  for (let i = 0; i < workers; i++) cluster.fork({ QUICKLANE_WORKER_INDEX: String(i) });
  let ready = 0;
  cluster.on('message', (w, msg) => {
    if (msg === 'listening' && ++ready === workers) {
      console.log(`quicklane (node, ${workers} workers) listening on http://${host}:${port}`);
    } else if (msg && msg.type === 'publish') {
      // A chat message from one worker's member: every other worker publishes it too.
      for (const other of Object.values(cluster.workers)) if (other !== w) other.send(msg);
    }
  });
  cluster.on('exit', (w, code, signal) => {
    if (!shuttingDown) console.error(`worker ${w.process.pid} exited (${signal || code})`);
  });
  let shuttingDown = false;
  const stop = () => {
    shuttingDown = true;
    for (const w of Object.values(cluster.workers)) w.process.kill('SIGTERM');
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
} else {
  const app = quicklane.app();
  app.static('GET', '/ping', { message: 'pong' });
  app.get('/hello/:name', (req) => ({ hello: req.params.name }));
  app.post('/echo', (req) => req.json());  // invalid JSON throws with statusCode 400

  // WebSockets: text arrives as a string, binary as a Buffer; send() sends a
  // string as text and a Buffer as binary (isBinary says which, here). The echo
  // offers permessage-deflate to clients that ask (as the C example's does).
  app.ws('/ws/echo', {
    compression: 'shared',
    message: (ws, message, isBinary) => ws.send(message, isBinary),
  });

  const index = Number(process.env.QUICKLANE_WORKER_INDEX || 0);
  const members = new Map();  // room → members numbered so far by this process
  const publishRoom = (room, text) => {
    app.publish(`room:${room}`, text);
    if (cluster.isWorker) process.send({ type: 'publish', room, text });
  };
  if (cluster.isWorker) {
    process.on('message', (msg) => {
      if (msg && msg.type === 'publish') app.publish(`room:${msg.room}`, msg.text);
    });
  }
  app.ws('/ws/chat/:room', {
    open(ws, req) {
      const room = req.params.room;
      const k = members.get(room) || 0;
      members.set(room, k + 1);
      ws.data = { room, from: index + 1 + k * workers };
      ws.subscribe(`room:${room}`);
    },
    message(ws, message, isBinary) {
      if (isBinary) {  // the room speaks JSON text
        ws.end(1003, 'text messages only');
        return;
      }
      publishRoom(ws.data.room, JSON.stringify({ room: ws.data.room, from: ws.data.from, text: message }));
    },
  });

  app.listen({ host, port, reusePort: workers > 1 }).then((address) => {
    if (cluster.isWorker) process.send('listening');
    else console.log(`quicklane (node) listening on ${address}`);
  }, (err) => {
    console.error(err.message);
    process.exit(1);
  });

  const stop = () => app.close(5000).then(() => process.exit(0));
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}
