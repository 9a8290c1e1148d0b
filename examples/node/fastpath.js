#!/usr/bin/env node
// The fastpath contract served by quicklane on Node's own loop. Validation (Fastify's route
// `schema`), the response cache, CORS, the rate limit, API keys, static files (./static),
// /metrics, /healthz and /ping are native rules: a request they answer never enters JS.
//   POST /items         body checked natively (422 FastAPI shape / 400), then 201 from JS
//   GET  /items/:id     id an integer >= 1 (else 422 natively), 200 from JS
//   GET  /cached/:key   {"key","calls"} from JS, cached natively per path for 2 s
//   GET  /limited       5 per 60 s per client IP, then 429 + Retry-After
//   GET  /private       X-API-Key: secret-key (401 missing, 403 wrong)
// PORT (default 8080); WORKERS > 1 forks node:cluster workers on the same port (SO_REUSEPORT).
// Native state (the cache, rate-limit buckets) and the JS counters are per process then: each
// worker has its own.
//
//   cd examples && npm install ../bindings/node && node node/fastpath.js
'use strict';
const cluster = require('node:cluster');
const path = require('node:path');

let quicklane;
try {
  quicklane = require('quicklane');
} catch {
  quicklane = require('../../bindings/node');  // running from a checkout
}

const port = Number(process.env.PORT || 8080);
const host = process.env.HOST || '127.0.0.1';
const workers = Math.max(1, Number(process.env.WORKERS || 1));

// The body of POST /items (what a TypeBox Type.Object(..., { additionalProperties: false }) gives).
const Item = {
  type: 'object',
  properties: {
    name: { type: 'string', minLength: 1 },
    price: { type: 'number', minimum: 0 },
    tags: { type: 'array', items: { type: 'string' } },
  },
  required: ['name', 'price'],
  additionalProperties: false,
};
const ItemParams = { type: 'object', properties: { id: { type: 'integer', minimum: 1 } }, required: ['id'] };

if (workers > 1 && cluster.isPrimary) {
  if (!quicklane.features.reusePort) {
    console.error('WORKERS > 1 needs a core with ql_server_options.reuse_port (see docs/node.md)');
    process.exit(1);
  }
  for (let i = 0; i < workers; i++) cluster.fork();
  let ready = 0;
  cluster.on('message', (w, msg) => {
    if (msg === 'listening' && ++ready === workers) {
      console.log(`quicklane (node, ${workers} workers) listening on http://${host}:${port}`);
    }
  });
  let shuttingDown = false;
  cluster.on('exit', (w, code, signal) => {
    if (!shuttingDown) console.error(`worker ${w.process.pid} exited (${signal || code})`);
  });
  const stop = () => {
    shuttingDown = true;
    for (const w of Object.values(cluster.workers)) w.process.kill('SIGTERM');
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
} else {
  let nextId = 1;
  let cachedCalls = 0;
  const app = quicklane.app();
  app.static('GET', '/ping', { message: 'pong' });
  app.static('GET', '/healthz', { status: 'ok' });
  app.post('/items', { schema: { body: Item } }, (req, reply) => {
    const item = req.json();  // valid here: the core checked it
    reply.code(201).send({ id: nextId++, tags: [], ...item });
  });
  app.get('/items/:id', { schema: { params: ItemParams } }, (req) => (
    { id: Number(req.params.id), name: `item ${req.params.id}`, price: 9.5, tags: [] }));
  app.get('/cached/:key', { cache: { ttl: 2000 } }, (req) => ({ key: req.params.key, calls: ++cachedCalls }));
  app.get('/limited', { rateLimit: { max: 5, timeWindow: 60000 } }, () => ({ limited: true }));
  app.get('/private', { apiKey: true }, () => ({ private: true }));
  app.apiKeys(['secret-key']);
  app.cors({ origin: ['https://app.example'], methods: ['GET', 'POST'] });
  app.staticDir('/static/', path.join(__dirname, '..', 'static'));
  app.metrics('/metrics');

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
