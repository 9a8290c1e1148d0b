#!/usr/bin/env node
// Fastify 5 peer of examples/node/hello.js (bench/run): the same contract,
// one process, logger off, no response schema (handlers return plain objects,
// as the quicklane example's do).
//   GET /ping → {"message":"pong"}, GET /hello/:name → {"hello":name}, POST /echo → the JSON body
'use strict';
const path = require('node:path');
const modules = process.env.PEERS_NODE_MODULES || path.join(__dirname, '../../out/peers-node/node_modules');
const fastify = require(path.join(modules, 'fastify'))({ logger: false });

const PING = { message: 'pong' };
fastify.get('/ping', async () => PING);
fastify.get('/hello/:name', async (req) => ({ hello: req.params.name }));
fastify.post('/echo', async (req) => req.body);

const port = Number(process.env.PORT || 8080);
fastify.listen({ host: '127.0.0.1', port }).then(
  (addr) => console.log(`fastify ${fastify.version} on ${addr}`),
  (err) => { console.error(err); process.exit(1); });
const stop = () => fastify.close().then(() => process.exit(0));
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
