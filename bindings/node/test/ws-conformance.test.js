'use strict';
// The example's WebSockets against the repository's checks: the WebSocket part
// of the example contract (tests/ws_contract.py, WORKERS=2: two node:cluster
// workers) and Autobahn|Testsuite cases 1-10 through kosoku (tests/autobahn.sh;
// 0 FAILED). Both start examples/node/hello.js themselves.
const test = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const { spawnSync } = require('node:child_process');

const root = path.resolve(__dirname, '..', '..', '..');
const example = path.join(root, 'examples', 'node', 'hello.js');

test('ws contract: examples/node/hello.js (tests/ws_contract.py)', { timeout: 120000 }, () => {
  const r = spawnSync('python3', [path.join(root, 'tests', 'ws_contract.py'), process.execPath, example],
    { cwd: root, encoding: 'utf8', timeout: 110000 });
  assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
  assert.match(r.stdout, /ws contract ok/);
});

test('Autobahn cases 1-10 on examples/node/hello.js /ws/echo: 0 FAILED', { timeout: 600000 }, (t) => {
  const started = Date.now();
  const r = spawnSync('bash', [path.join(root, 'tests', 'autobahn.sh'), process.execPath, example], {
    cwd: root,
    encoding: 'utf8',
    timeout: 590000,
    env: {
      ...process.env,
      AUTOBAHN_VENV: process.env.AUTOBAHN_VENV || path.join(root, 'build', 'autobahn-venv'),
      KOSOKU_PARALLEL: process.env.KOSOKU_PARALLEL || '2',
    },
  });
  const out = `${r.stdout}\n${r.stderr}`;
  assert.equal(r.status, 0, out);
  const summary = out.split('\n').find((l) => l.startsWith('autobahn:'));
  assert.ok(summary, out);
  assert.doesNotMatch(summary, /FAILED/);
  assert.match(summary, /OK \d+/);
  t.diagnostic(`${summary} (${((Date.now() - started) / 1000).toFixed(1)} s)`);
});
