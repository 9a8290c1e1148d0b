#!/usr/bin/env node
// Express peer of examples/node/hello.js (bench/run): the example contract, one
// process, as Express's production guide says: NODE_ENV=production (set by
// bench/run), no logging middleware, x-powered-by off; express.json() parses
// the /echo body.
'use strict';
const path = require('node:path');
const modules = process.env.PEERS_NODE_MODULES || path.join(__dirname, '../../out/peers-node/node_modules');
const express = require(path.join(modules, 'express'));

const app = express();
app.disable('x-powered-by');
app.disable('etag');
app.get('/ping', (req, res) => res.json({ message: 'pong' }));
app.get('/hello/:name', (req, res) => res.json({ hello: req.params.name }));
app.post('/echo', express.json({ limit: '1mb' }), (req, res) => res.json(req.body));
app.use((err, req, res, next) => res.status(err.status || 500).json({ detail: err.message }));

const port = Number(process.env.PORT || 8080);
const server = app.listen(port, '127.0.0.1', () => console.log(`express on 127.0.0.1:${port}`));
server.keepAliveTimeout = 300000; // keep idle connections for the idle test, as the other servers do
const stop = () => server.close(() => process.exit(0));
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
