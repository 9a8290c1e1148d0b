#!/usr/bin/env node
// Plain node:http peer of examples/node/hello.js (bench/run): the same
// contract with hand-written routing, no framework. Informational row.
'use strict';
const http = require('node:http');

const PING = Buffer.from('{"message":"pong"}');
const server = http.createServer((req, res) => {
  const url = req.url;
  if (req.method === 'GET' && url === '/ping') {
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': PING.length });
    res.end(PING);
  } else if (req.method === 'GET' && url.startsWith('/hello/') && url.indexOf('/', 7) < 0) {
    const body = JSON.stringify({ hello: decodeURIComponent(url.slice(7).split('?')[0]) });
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  } else if (req.method === 'POST' && url === '/echo') {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      try { JSON.parse(body); } catch {
        res.writeHead(400, { 'content-type': 'application/json' });
        return res.end('{"detail":"invalid JSON"}');
      }
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length });
      res.end(body);
    });
  } else {
    res.writeHead(404, { 'content-type': 'application/json' });
    res.end('{"detail":"Not Found"}');
  }
});
server.keepAliveTimeout = 0; // keep idle connections (as the other servers do) for the idle test
const port = Number(process.env.PORT || 8080);
server.listen(port, '127.0.0.1', () => console.log(`node:http on 127.0.0.1:${port}`));
const stop = () => server.close(() => process.exit(0));
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
