import { readFileSync } from 'node:fs';
import semver from 'semver';
import { describe, expect, it } from 'vitest';

// `npm ci` on a supported Node prints no EBADENGINE warning: every package the lockfile installs accepts
// Node 20.19 and 24 (README, "Two commands"). Where a dependency's newest release asks for Node 22 only,
// package.json's `overrides` pins the release before it whose API is the same (cookie 1.1 for
// light-my-request, content-disposition 2 for @fastify/static; both checked against the code that calls them).

interface LockedPackage {
  version?: string;
  engines?: { node?: string } | string[];
  os?: string[];
  cpu?: string[];
}

/** npm skips a package built for another platform (sharp's, rolldown's binaries): it warns of nothing. */
const installsHere = (locked: LockedPackage) =>
  (locked.os === undefined || locked.os.includes(process.platform)) &&
  (locked.cpu === undefined || locked.cpu.includes(process.arch));

const SUPPORTED = ['20.19.0', '24.0.0'];

describe('npm ci', () => {
  it('installs nothing that refuses a supported Node', () => {
    const lock = JSON.parse(readFileSync(new URL('../package-lock.json', import.meta.url), 'utf8')) as {
      packages: Record<string, LockedPackage>;
    };
    const refusing: string[] = [];
    for (const [where, locked] of Object.entries(lock.packages)) {
      const range = Array.isArray(locked.engines) ? undefined : locked.engines?.node;
      if (range === undefined || !installsHere(locked)) continue;
      for (const node of SUPPORTED) {
        if (!semver.satisfies(node, range, { includePrerelease: true })) {
          refusing.push(`${where}@${locked.version ?? '?'} wants node ${range}, not ${node}`);
        }
      }
    }
    expect(refusing).toEqual([]);
  });
});
