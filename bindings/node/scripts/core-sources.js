// Prints the core's source files (core/sources.txt, shared with the CMake
// builds) relative to bindings/node, for binding.gyp.
'use strict';
const fs = require('fs');
const path = require('path');
const list = fs.readFileSync(path.join(__dirname, '..', '..', '..', 'core', 'sources.txt'), 'utf8');
console.log(list.split('\n').map((s) => s.trim()).filter(Boolean).map((s) => `../../${s}`).join(' '));
