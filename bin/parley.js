#!/usr/bin/env node
// The `parley` operator CLI (src/cli.ts): the bundled dist/cli.mjs when dist/ is current (as after `npm ci`),
// ready in a fraction of the time; otherwise the sources through tsx, like the server.
import { isBuildCurrent } from './built.mjs';

if (isBuildCurrent()) {
  await import('../dist/cli.mjs');
} else {
  const { register } = await import('tsx/esm/api');
  register();
  await import('../src/cli.ts');
}
