'use strict';
// examples/node/fastpath.js against the shared fastpath contract (tests/fastpath_contract.sh:
// curl checks of validation, cache, CORS, rate limit, API keys, static files, metrics).
// WORKERS=1: with node:cluster each worker process has its own cache and rate-limit buckets,
// and the contract counts them across requests.
const test = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const { spawnSync } = require('node:child_process');

const root = path.join(__dirname, '..', '..', '..');

test('examples/node/fastpath.js serves the fastpath contract', { timeout: 90000 }, () => {
  const r = spawnSync('bash', [path.join(root, 'tests', 'fastpath_contract.sh'), process.execPath, 'node/fastpath.js'],
    { env: { ...process.env, WORKERS: '1' }, encoding: 'utf8', timeout: 80000 });
  const out = `${r.stdout}${r.stderr}`;
  assert.equal(r.status, 0, out);
  assert.match(out, /fastpath contract ok/);
  assert.doesNotMatch(out, /^FAIL/m);
});
