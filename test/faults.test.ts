import { describe, expect, it } from 'vitest';
import { SHORT_RUN, faultSuiteUnavailable, runFaultSuite } from './faults/engine.ts';
import { randomSeed } from './faults/random.ts';
import { formatReport } from './faults/report.ts';

// The short variant of the fault-injection suite (`npm run faults` is the full run). It runs where CI runs
// the PostgreSQL pass (DATABASE_URL and REDIS_URL set), and needs the PostgreSQL server binaries and
// redis-server; it starts its own cluster and Redis on ports of their own and never touches those URLs.
const unavailable =
  process.env.DATABASE_URL === undefined || process.env.REDIS_URL === undefined
    ? 'it runs with the PostgreSQL pass (DATABASE_URL and REDIS_URL set)'
    : faultSuiteUnavailable();
if (unavailable !== null) console.log(`skipped "fault injection": ${unavailable}`);

describe.skipIf(unavailable !== null)('fault injection (short run)', () => {
  it('loses, duplicates and skips nothing while servers, Redis and PostgreSQL are killed and restarted', async () => {
    const seed = process.env.FAULTS_SEED === undefined ? randomSeed() : Number(process.env.FAULTS_SEED);
    const result = await runFaultSuite({ ...SHORT_RUN, seed, log: () => {} });
    console.log(formatReport(result, `npm run faults -- --short --seed ${seed}`));
    if (result.failures.length > 0) console.log(`server output (tails):\n${result.serverOutput}`);
    expect(result.faults.map((fault) => fault.kind).sort()).toEqual([
      'kill-server',
      'restart-postgres',
      'restart-redis',
    ]);
    expect(result.figures.acknowledged).toBeGreaterThan(0);
    expect(result.webhooks.expected).toBeGreaterThan(0);
    expect(result.failures).toEqual([]);
  }, 300_000);
});
