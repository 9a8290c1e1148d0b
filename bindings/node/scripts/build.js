#!/usr/bin/env node
// npm "install" script: builds the addon with node-gyp against the headers
// installed with Node (no download from nodejs.org), two jobs at most.
// Incremental: reconfigures when binding.gyp or core/sources.txt changed.
'use strict';
const fs = require('fs');
const path = require('path');
const { spawnSync } = require('child_process');

const root = path.join(__dirname, '..');

function nodeDir() {
  const candidates = [];
  if (process.env.QUICKLANE_NODEDIR) candidates.push(process.env.QUICKLANE_NODEDIR);
  if (process.env.npm_config_nodedir) candidates.push(process.env.npm_config_nodedir);
  // /usr/bin/node -> /usr (headers in /usr/include/node)
  candidates.push(path.dirname(path.dirname(process.execPath)));
  candidates.push('/usr', '/usr/local');
  for (const dir of candidates) {
    if (fs.existsSync(path.join(dir, 'include', 'node', 'node_api.h')) &&
        fs.existsSync(path.join(dir, 'include', 'node', 'uv.h'))) return dir;
  }
  console.error('quicklane: Node headers not found (looked for include/node/node_api.h and uv.h under ' +
    candidates.join(', ') + '); set QUICKLANE_NODEDIR');
  process.exit(1);
}

function nodeGyp() {
  const tries = [];
  if (process.env.npm_config_node_gyp) tries.push(process.env.npm_config_node_gyp);
  try { tries.push(require.resolve('node-gyp/bin/node-gyp.js')); } catch {}
  // npm ships node-gyp: <prefix>/lib/node_modules/npm/node_modules/node-gyp
  const npmDirs = [path.join(path.dirname(path.dirname(process.execPath)), 'lib', 'node_modules', 'npm'),
    '/usr/lib/node_modules/npm', '/usr/share/nodejs/npm', '/usr/local/lib/node_modules/npm'];
  for (const d of npmDirs) tries.push(path.join(d, 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'));
  for (const t of tries) if (t && fs.existsSync(t)) return t;
  console.error('quicklane: node-gyp not found (it ships with npm)');
  process.exit(1);
}

// node-addon-api's headers (a build-time dependency only). npm does not install
// the dependencies of a linked folder (`npm install /path/to/bindings/node` in
// an empty project), and runs this script before a copied package's own are
// in place; so look next to binding.gyp, then in the project npm runs for, and
// else fetch it from the registry into this folder, as a checkout's install does.
function napiInclude() {
  const from = [root, process.env.INIT_CWD, process.cwd()].filter(Boolean);
  const find = () => {
    for (const dir of from) {
      try {
        return require(require.resolve('node-addon-api', { paths: [dir] })).include_dir.replace(/^"|"$/g, '');
      } catch {}
    }
    return null;
  };
  let dir = find();
  if (!dir) {
    const range = require(path.join(root, 'package.json')).dependencies['node-addon-api'];
    console.error(`quicklane: node-addon-api not found; installing node-addon-api@${range} into ${root}`);
    const npm = process.env.npm_execpath;
    const cmd = npm ? [process.execPath, [npm]] : ['npm', []];
    const r = spawnSync(cmd[0], [...cmd[1], 'install', '--no-save', '--no-package-lock', '--ignore-scripts',
      '--no-audit', '--no-fund', '--loglevel=error', `node-addon-api@${range}`], { cwd: root, stdio: 'inherit' });
    if (r.status !== 0) process.exit(r.status || 1);
    dir = find();
  }
  if (!dir) {
    console.error('quicklane: node-addon-api could not be installed');
    process.exit(1);
  }
  return dir;
}

const gyp = nodeGyp();
const nodedir = nodeDir();
const common = [`--nodedir=${nodedir}`, '--jobs=' + (process.env.QUICKLANE_JOBS || '2')];
function run(args, gypArgs = []) {
  const r = spawnSync(process.execPath, [gyp, ...args, ...common, ...gypArgs], { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) process.exit(r.status || 1);
}
// Reconfigure when the build description changed since the last configure.
function stale() {
  const mk = path.join(root, 'build', 'Makefile');
  if (!fs.existsSync(mk)) return true;
  const t = fs.statSync(mk).mtimeMs;
  return [path.join(root, 'binding.gyp'), path.join(root, '..', '..', 'core', 'sources.txt')]
    .some((f) => fs.existsSync(f) && fs.statSync(f).mtimeMs > t);
}
if (stale() || process.env.QUICKLANE_REBUILD) {
  run(['configure'], ['--', `-Dnapi_include=${napiInclude()}`]);
}
run(['build']);
