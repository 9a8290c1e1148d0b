#!/usr/bin/env node
// The example contract (DESIGN.md) served by quicklane on Node's own loop:
//   GET  /ping         → 200 {"message":"pong"}  native static route, never enters JS
//   GET  /hello/:name  → 200 {"hello":"<name>"}  JS handler
//   POST /echo         → 200 the JSON body       JS handler; invalid JSON → 400
//   anything else      → 404 / 405 from the core
// PORT (default 8080) selects the port; WORKERS > 1 forks that many node:cluster
// workers, each serving through the core on the same port (SO_REUSEPORT).
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
  for (let i = 0; i < workers; i++) cluster.fork();
  let ready = 0;
  cluster.on('message', (w, msg) => {
    if (msg === 'listening' && ++ready === workers) {
      console.log(`quicklane (node, ${workers} workers) on http://${host}:${port}`);
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

  app.listen({ host, port, reusePort: workers > 1 }).then((address) => {
    if (cluster.isWorker) process.send('listening');
    else console.log(`quicklane (node) on ${address}`);
  }, (err) => {
    console.error(err.message);
    process.exit(1);
  });

  const stop = () => app.close(5000).then(() => process.exit(0));
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}
