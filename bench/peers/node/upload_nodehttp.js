#!/usr/bin/env node
// Plain node:http peer of bench/peers/node/upload_ql.js (bench/run's upload
// scenario): POST /upload hashes the body with SHA-256 (node:crypto) from req's
// 'data' events as it arrives, never holding it whole, and answers 200
// {"bytes":N,"sha256":"<hex>"}; GET /ping answers {"message":"pong"}.
//   PORT=8080 node bench/peers/node/upload_nodehttp.js
'use strict';
const crypto = require('node:crypto');
const http = require('node:http');

const PING = Buffer.from('{"message":"pong"}');
const json = (res, status, body) => {
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
};
const server = http.createServer((req, res) => {
  if (req.method === 'GET' && req.url === '/ping') {
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': PING.length });
    res.end(PING);
  } else if (req.method === 'POST' && req.url === '/upload') {
    const h = crypto.createHash('sha256');
    let bytes = 0;
    req.on('data', (c) => {
      h.update(c);
      bytes += c.length;
    });
    req.on('end', () => json(res, 200, JSON.stringify({ bytes, sha256: h.digest('hex') })));
    req.on('error', () => res.destroy());
  } else {
    json(res, 404, '{"detail":"Not Found"}');
  }
});
// No request timeout (node:http's default is 300 s per request; a slow upload
// under load must not be cut), keep-alive connections kept as the others do.
server.requestTimeout = 0;
server.keepAliveTimeout = 0;
const port = Number(process.env.PORT || 8080);
server.listen(port, '127.0.0.1', () => console.log(`node:http upload server on 127.0.0.1:${port}`));
const stop = () => server.close(() => process.exit(0));
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
