// Whether dist/ (built by `npm run build`, which `npm ci` runs as `prepare`) is current: its stamp at least
// as new as every file in src/. bin/start.mjs and bin/parley.js run the bundles when it is, else the
// TypeScript sources through tsx.
import { existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const stamp = path.join(root, 'dist', '.built');

/** The newest modification time of any file under `directory`. */
function newestIn(directory) {
  let newest = 0;
  for (const entry of readdirSync(directory, { withFileTypes: true })) {
    const full = path.join(directory, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestIn(full) : statSync(full).mtimeMs);
  }
  return newest;
}

export function isBuildCurrent() {
  return existsSync(stamp) && statSync(stamp).mtimeMs >= newestIn(path.join(root, 'src'));
}
