#!/usr/bin/env node
// quicklane Node, native, of bench/run's upload scenario: POST /upload is a
// { stream: true } route, so the handler runs once the head is in and req is a
// Readable of the body: `for await` hashes each chunk (SHA-256, node:crypto) as
// it arrives, never holding the body whole; GET /ping is a native static route.
// Answers 200 {"bytes":N,"sha256":"<hex>"}.
//   PORT=8080 node bench/peers/node/upload_ql.js
'use strict';
const crypto = require('node:crypto');

let quicklane;
try {
  quicklane = require('quicklane');
} catch {
  quicklane = require('../../../bindings/node');  // running from a checkout
}

const app = quicklane.app();
app.static('GET', '/ping', { message: 'pong' });
app.post('/upload', { stream: true }, async (req) => {
  const h = crypto.createHash('sha256');
  let bytes = 0;
  for await (const chunk of req) {
    h.update(chunk);
    bytes += chunk.length;
  }
  return { bytes, sha256: h.digest('hex') };
});

const port = Number(process.env.PORT || 8080);
// No limit on a streamed body (the default too; said here, as net/http has none).
app.listen({ host: '127.0.0.1', port, maxStreamBodyBytes: 0 }).then((address) => {
  console.log(`quicklane (node) upload server on ${address}`);
}, (err) => {
  console.error(err.message);
  process.exit(1);
});
const stop = () => app.close(5000).then(() => process.exit(0));
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
