#!/usr/bin/env node
// `npm start`: runs the bundled server, dist/main.mjs (built by `npm run build`, which `npm ci` runs as `prepare`)
// when it is at least as new as every file in src/; otherwise runs the TypeScript sources through tsx and
// says so. One bundled file is ready sooner than compiling the sources on the fly (docs/PERFORMANCE.md).
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

if (existsSync(stamp) && statSync(stamp).mtimeMs >= newestIn(path.join(root, 'src'))) {
  await import('../dist/main.mjs');
} else {
  process.stderr.write(
    'parley: dist/ is missing or older than src/, so running the sources through tsx (`npm run build` makes start-up faster)\n',
  );
  const { register } = await import('tsx/esm/api');
  register();
  await import('../src/main.ts');
}
