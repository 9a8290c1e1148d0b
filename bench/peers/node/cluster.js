#!/usr/bin/env node
// node:cluster front for a one-process peer (bench/run, all-cores scenario):
//   WORKERS=2 node cluster.js fastify.js
// forks WORKERS workers that each run the given server file on the same port
// (the primary accepts and hands connections round-robin, Node's default on
// Linux). SIGTERM stops the workers, then the primary.
'use strict';
const cluster = require('node:cluster');
const path = require('node:path');

if (cluster.isPrimary) {
  const n = Math.max(1, Number(process.env.WORKERS || 1));
  for (let i = 0; i < n; i++) cluster.fork();
  let stopping = false;
  const stop = () => {
    stopping = true;
    for (const w of Object.values(cluster.workers)) w.kill('SIGTERM');
    setTimeout(() => process.exit(0), 2000).unref();
  };
  cluster.on('exit', () => { if (stopping && Object.keys(cluster.workers).length === 0) process.exit(0); });
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
} else {
  require(path.resolve(process.argv[2]));
}
