// Prints the project version from the root CMakeLists.txt (one source of truth).
const fs = require('fs');
const path = require('path');
const text = fs.readFileSync(path.join(__dirname, '..', '..', '..', 'CMakeLists.txt'), 'utf8');
const m = /project\(quicklane VERSION ([0-9.]+)/.exec(text);
process.stdout.write(m ? m[1] : '0.0.0');
