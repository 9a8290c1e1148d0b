#!/usr/bin/env node
// Streamed request bodies on quicklane's Node binding: the body is read as it
// arrives, with backpressure to the client (it is never held whole).
//   POST /upload      → {"bytes","sha256"} of the body (up to 1 GiB; over it: 413 from the core)
//   PUT  /files/:name → the body stored in ./uploads/<name> with stream.pipeline
//   POST /echo        → the JSON body, collected from the stream (invalid JSON: 400)
// PORT (default 8080).
//
//   node examples/node/upload.js &
//   head -c 100000000 /dev/urandom | curl -sT - -X POST http://127.0.0.1:8080/upload
'use strict';
const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');
const { pipeline } = require('node:stream/promises');

let quicklane;
try {
  quicklane = require('quicklane');
} catch {
  quicklane = require('../../bindings/node');  // running from a checkout
}

const dir = path.join(process.cwd(), 'uploads');
const app = quicklane.app();

app.post('/upload', { stream: true, maxBodyBytes: 1 << 30 }, async (req) => {
  const hash = crypto.createHash('sha256');
  let bytes = 0;
  for await (const chunk of req) {
    hash.update(chunk);
    bytes += chunk.length;
  }
  return { bytes, sha256: hash.digest('hex') };
});

app.put('/files/:name', { stream: true }, async (req, reply) => {
  const name = path.basename(req.params.name);
  if (!name || name.startsWith('.')) return reply.code(400).send({ detail: 'bad file name' });
  fs.mkdirSync(dir, { recursive: true });
  await pipeline(req, fs.createWriteStream(path.join(dir, name)));
  return reply.code(201).send({ stored: name });
});

app.post('/echo', { stream: true, maxBodyBytes: 1 << 20 }, (req) => req.json());

app.listen({ host: process.env.HOST || '127.0.0.1', port: Number(process.env.PORT || 8080) })
  .then((url) => console.log(`listening on ${url}`));
