'use strict';
// Multi-core: node:cluster workers, each serving through the core on one
// port with SO_REUSEPORT. Needs ql_server_options.reuse_port in the core.
const test = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const { spawn } = require('node:child_process');
const quicklane = require('..');
const { RawClient, get } = require('./helpers');

test('node:cluster: 2 workers share one port; both serve', {
  skip: quicklane.features.reusePort ? false : 'core lacks ql_server_options.reuse_port (proposed patch)',
  timeout: 30000,
}, async () => {
  // a free port: bind one with port 0, then release it
  const probe = quicklane.app();
  await probe.listen({ port: 0 });
  const port = probe.port;
  await probe.close();

  const child = spawn(process.execPath, [path.join(__dirname, 'fixtures', 'cluster-app.js')], {
    env: { ...process.env, PORT: String(port), WORKERS: '2' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let err = '';
  child.stderr.on('data', (d) => { err += d; });
  try {
    await new Promise((resolve, reject) => {
      child.stdout.on('data', (d) => { if (String(d).includes('ready')) resolve(); });
      child.on('exit', (code) => reject(new Error(`cluster exited (${code}): ${err}`)));
    });
    // a plain (non-reusePort) server must still be refused on that port
    const other = quicklane.app();
    await assert.rejects(other.listen({ port }), /cannot listen|QL_E_IO/);
    const pids = new Set();
    for (let i = 0; i < 200 && pids.size < 2; i++) {
      const c = new RawClient(port);
      await c.ready;
      c.send(get('/pid') + get('/ping'));
      const r = await c.read();
      assert.equal((await c.read()).text, '{"message":"pong"}');
      pids.add(JSON.parse(r.text).pid);
      c.close();
    }
    assert.equal(pids.size, 2, 'connections reached both workers');
  } finally {
    child.kill('SIGTERM');
    await new Promise((r) => (child.exitCode !== null ? r() : child.on('exit', r)));
  }
});
