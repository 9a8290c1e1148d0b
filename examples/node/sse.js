#!/usr/bin/env node
// Streamed answers on quicklane's Node binding: produced as they are sent,
// with backpressure to the client (a client that stops reading pauses the
// producer; one that leaves stops it).
//   GET /clock          → server-sent events: the time every second (id, event, JSON data),
//                         a keep-alive comment while idle; ?n= ends after n events
//   GET /export.csv     → a large CSV (?rows=, default 1,000,000), generated row block by
//                         row block by an async generator, chunked
//   GET /export.bin     → ?mib= MiB (default 64) of bytes with a declared Content-Length,
//                         from a stream.Readable through reply.stream() and pipeline()
//   GET /               → a page that shows /clock with EventSource
// PORT (default 8080).
//
//   node examples/node/sse.js &
//   curl -N http://127.0.0.1:8080/clock
//   curl -s 'http://127.0.0.1:8080/export.csv?rows=100000' | tail -2
//   curl -s http://127.0.0.1:8080/export.bin | sha256sum
'use strict';
const { Readable, pipeline } = require('node:stream');
const { setTimeout: sleep } = require('node:timers/promises');

let quicklane;
try {
  quicklane = require('quicklane');
} catch {
  quicklane = require('../../bindings/node');  // running from a checkout
}

const app = quicklane.app();

app.static('GET', '/', `<!doctype html><meta charset="utf-8"><title>clock</title>
<pre id="out"></pre>
<script>
  const es = new EventSource('/clock');
  es.addEventListener('tick', (e) => { document.getElementById('out').textContent = JSON.parse(e.data).iso; });
</script>`, { contentType: 'text/html; charset=utf-8' });

// Server-sent events from an async generator. req.signal fires when the client
// leaves: the generator's wait ends at once and its finally block runs.
app.get('/clock', (req, reply) => {
  const n = Math.max(0, Number(req.query.n) || 0);
  return reply.sse((async function* () {
    yield { retry: 2000, comment: 'quicklane clock' };
    for (let id = 1; n === 0 || id <= n; id++) {
      const now = new Date();
      yield { id, event: 'tick', data: { iso: now.toISOString(), epochMs: now.getTime() } };
      try {
        await sleep(1000, undefined, { signal: req.signal });
      } catch {
        return;  // the client left
      }
    }
  })(), { ping: 15000 });
});

// A large export from an async generator: the next block is made only when the
// core has room for it (the client reads), so memory stays flat.
app.get('/export.csv', (req, reply) => {
  const rows = Math.max(0, Number(req.query.rows) || 1_000_000);
  reply.type('text/csv; charset=utf-8').header('content-disposition', 'attachment; filename="export.csv"');
  return (async function* () {
    yield 'id,name,score\n';
    for (let i = 0; i < rows;) {
      let block = '';
      for (const end = Math.min(rows, i + 1000); i < end; i++) block += `${i},user-${i},${(i * 7919) % 1000}\n`;
      yield block;
    }
  })();
});

// The low-level writer: a Writable with a declared length, fed by pipeline().
app.get('/export.bin', (req, reply) => {
  const total = Math.max(0, Number(req.query.mib) || 64) * 1024 * 1024;
  const block = Buffer.alloc(64 * 1024, 'quicklane ');
  let sent = 0;
  const src = new Readable({
    read() {
      if (sent >= total) return this.push(null);
      const n = Math.min(block.length, total - sent);
      sent += n;
      this.push(block.subarray(0, n));
    },
  });
  pipeline(src, reply.stream({ length: total }), (err) => {
    if (err && err.code !== 'ERR_STREAM_PREMATURE_CLOSE') console.error('export.bin failed:', err);
  });
});

app.listen({ host: process.env.HOST || '127.0.0.1', port: Number(process.env.PORT || 8080) })
  .then((url) => console.log(`listening on ${url}`));
