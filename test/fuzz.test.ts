import { describe, expect, it } from 'vitest';
import { fuzzApi, sendFuzzRequest, type Finding } from './fuzz/api-fuzzer.ts';
import { REGRESSIONS } from './fuzz/regressions.ts';
import { listenForSockets, useTestApp } from './helpers/app.ts';
import { createFuzzWorld } from './fuzz/world.ts';
import { fuzzSocket, fuzzUpgrades } from './fuzz/socket-fuzzer.ts';

// The API fuzzer: requests generated from the OpenAPI document's schemas, then mutated (wrong types,
// extremes, odd Unicode, deep nesting, forged cursors and tokens). No answer may be a 5xx, every 4xx is a
// problem document, and the server still serves a normal request afterwards. `npm run fuzz` runs it longer,
// with a fresh seed (FUZZ_RUNS, FUZZ_SEED).

const RUNS = Number(process.env.FUZZ_RUNS ?? 1500);
/** Socket frames and upgrades: a fifth as many, each needs a round trip over a real socket. */
const SOCKET_RUNS = Math.ceil(RUNS / 5);
const SEED = Number(process.env.FUZZ_SEED ?? 20261204);

/** One line per finding, grouped by route and status, so a report reads as a list of bugs. */
function summarize(findings: Finding[]): string {
  const groups = new Map<string, Finding[]>();
  for (const finding of findings) {
    const key = `${finding.status} ${finding.request.method} ${finding.request.url.split('?')[0] ?? ''}`;
    groups.set(key, [...(groups.get(key) ?? []), finding]);
  }
  return [...groups.entries()]
    .map(([key, group]) => {
      const first = group[0];
      return `${key} ×${group.length}\n  ${JSON.stringify(first?.request).slice(0, 600)}\n  → ${first?.body.slice(0, 300) ?? ''}`;
    })
    .join('\n');
}

describe('the API under generated and mutated input', () => {
  // Frames are sent one after the other as fast as answers come: no frame rate limit here.
  const t = useTestApp({
    allowedOrigins: [],
    wsMaxConnectionsPerUser: 1000,
    wsMaxFramesPerSecond: 1_000_000,
  });

  it('answers every regression case found so far with a 4xx problem, never a 5xx', async () => {
    const world = await createFuzzWorld(t.app, t.adminToken);
    const findings: Finding[] = [];
    for (const regression of REGRESSIONS) {
      const { finding } = await sendFuzzRequest(t.app, regression.request(world, t.adminToken));
      if (finding !== null) findings.push(finding);
    }
    expect(summarize(findings)).toBe('');
  });

  it(
    `answers ${RUNS} generated requests (seed ${SEED}) without a 5xx, and still serves afterwards`,
    async () => {
      const { sent, findings, statuses } = await fuzzApi({
        app: t.app,
        adminToken: t.adminToken,
        seed: SEED,
        runs: RUNS,
      });
      const byStatus = [...statuses.entries()].sort().map(([status, n]) => `${status}: ${n}`);
      console.log(
        `fuzz: seed ${SEED}, ${sent} requests (${byStatus.join(', ')}), ${findings.length} findings`,
      );
      expect(summarize(findings)).toBe('');
      // The process is up and a normal request on a tenant the fuzzer never touched works.
      const world = await createFuzzWorld(t.app, t.adminToken);
      const me = await t.app.inject({
        method: 'GET',
        url: '/v1/me',
        headers: { authorization: `Bearer ${world.userToken}` },
      });
      expect(me.statusCode).toBe(200);
    },
    Math.max(60_000, RUNS * 200),
  );

  it(
    `answers ${SOCKET_RUNS} generated socket frames and ${SOCKET_RUNS} odd upgrades without an internal error`,
    async () => {
      const baseUrl = await listenForSockets(t);
      const world = await createFuzzWorld(t.app, t.adminToken);
      const frames = await fuzzSocket({ baseUrl, world, seed: SEED, runs: SOCKET_RUNS });
      const upgrades = await fuzzUpgrades({ baseUrl, world, seed: SEED, runs: SOCKET_RUNS });
      console.log(
        `fuzz: seed ${SEED}, ${frames.sent} frames, ${upgrades.sent} upgrades, ` +
          `${frames.findings.length + upgrades.findings.length} findings`,
      );
      expect([...frames.findings, ...upgrades.findings]).toEqual([]);
    },
    Math.max(60_000, SOCKET_RUNS * 200),
  );
});
