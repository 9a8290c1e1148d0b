'use strict';
// docs/node.md's empty-folder install, from a clean tree (issue 22 item 3):
//   npm init -y && npm install /path/to/quicklane/bindings/node
// npm links the folder and installs none of its dependencies, so the build
// script must find (or fetch) node-addon-api itself. The tree is a copy of the
// files git knows in core/, capi/, bindings/node/ and the root CMakeLists.txt (the version) (no node_modules, no
// build/), as in a fresh clone; the consumer then serves GET /ping.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { spawnSync } = require('child_process');

const root = path.resolve(__dirname, '..', '..', '..');

test('npm install of bindings/node from a clean tree in an empty folder, then a request', { timeout: 900000 }, () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ql-npm-'));
  try {
    const ls = spawnSync('git', ['ls-files', '-co', '--exclude-standard', 'CMakeLists.txt', 'core', 'capi', 'bindings/node'],
      { cwd: root, encoding: 'utf8' });
    assert.equal(ls.status, 0, ls.stderr);
    const files = ls.stdout.split('\n').filter((f) => f && !f.includes('node_modules/') && fs.existsSync(path.join(root, f)));
    assert.ok(files.includes('bindings/node/binding.gyp'));
    const tree = path.join(tmp, 'quicklane');
    for (const f of files) {
      fs.mkdirSync(path.dirname(path.join(tree, f)), { recursive: true });
      fs.copyFileSync(path.join(root, f), path.join(tree, f));
    }
    const consumer = path.join(tmp, 'app');
    fs.mkdirSync(consumer);
    const npm = (args) => spawnSync('npm', args, { cwd: consumer, encoding: 'utf8', timeout: 840000,
      env: { ...process.env, INIT_CWD: consumer } });
    let r = npm(['init', '-y']);
    assert.equal(r.status, 0, r.stderr);
    r = npm(['install', '--no-audit', '--no-fund', '--loglevel=error', path.join(tree, 'bindings', 'node')]);
    assert.equal(r.status, 0, `npm install failed:\n${r.stdout}\n${r.stderr}`);
    const script = `
      const quicklane = require('quicklane');
      const app = quicklane.app();
      app.static('GET', '/ping', { message: 'pong' });
      app.listen({ host: '127.0.0.1', port: 0 }).then(async (base) => {
        const res = await fetch(base + '/ping');
        console.log(res.status, await res.text());
        await app.close();
      });`;
    r = spawnSync(process.execPath, ['-e', script], { cwd: consumer, encoding: 'utf8', timeout: 30000 });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.trim(), '200 {"message":"pong"}');
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
});
