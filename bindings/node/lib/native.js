'use strict';
// Loads the compiled addon. `npm install` builds it (scripts/build.js); when
// npm skipped the install script (npm 11 runs a dependency's install script
// only when allowed: `npm install --allow-scripts=quicklane <path>`), the
// first require builds it here, once, with node-gyp against Node's own headers.
const fs = require('fs');
const path = require('path');
const { spawnSync } = require('child_process');

const root = path.join(__dirname, '..');
const candidates = [
  path.join(root, 'build', 'Release', 'quicklane.node'),
  path.join(root, 'build', 'Debug', 'quicklane.node'),
];

function load() {
  for (const file of candidates) if (fs.existsSync(file)) return require(file);
  return undefined;
}

let addon = load();
if (!addon && !process.env.QUICKLANE_NO_AUTOBUILD) {
  process.stderr.write('quicklane: building the native addon (first use; about a minute)...\n');
  const r = spawnSync(process.execPath, [path.join(root, 'scripts', 'build.js')], {
    cwd: root,
    stdio: ['ignore', 2, 2],
  });
  if (r.status === 0) addon = load();
}
if (!addon) {
  throw new Error('quicklane: the native addon is not built; run `npm install` in ' + root +
    ' (or `npm install --allow-scripts=quicklane <path>`)');
}
module.exports = addon;
