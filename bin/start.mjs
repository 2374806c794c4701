#!/usr/bin/env node
// `npm start`: runs the bundled server, dist/main.mjs (built by `npm run build`, which `npm ci` runs as `prepare`)
// when it is at least as new as every file in src/; otherwise runs the TypeScript sources through tsx and
// says so. One bundled file is ready sooner than compiling the sources on the fly (docs/PERFORMANCE.md).
import { isBuildCurrent } from './built.mjs';

if (isBuildCurrent()) {
  await import('../dist/main.mjs');
} else {
  process.stderr.write(
    'parley: dist/ is missing or older than src/, so running the sources through tsx (`npm run build` makes start-up faster)\n',
  );
  const { register } = await import('tsx/esm/api');
  register();
  await import('../src/main.ts');
}
