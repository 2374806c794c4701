// `npm run faults`: the fault-injection suite's full run (test/faults/engine.ts), printing its figures.
// Options: --seed N (replay a run), --short (the CI variant's size), --sends N, --seconds N (least send
// time), --rounds N (rounds of faults, one of each kind per round). Exits 1 when the run fails, 2 when the
// machine lacks PostgreSQL or Redis binaries.
import { parseArgs } from 'node:util';
import { FULL_RUN, SHORT_RUN, faultSuiteUnavailable, runFaultSuite } from '../test/faults/engine.ts';
import { formatReport } from '../test/faults/report.ts';
import { randomSeed } from '../test/faults/random.ts';

const { values } = parseArgs({
  options: {
    seed: { type: 'string' },
    short: { type: 'boolean', default: false },
    sends: { type: 'string' },
    seconds: { type: 'string' },
    rounds: { type: 'string' },
  },
});

const integer = (value: string | undefined, name: string): number | undefined => {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value)) throw new Error(`--${name} takes a non-negative integer, got ${value}`);
  return Number(value);
};

const unavailable = faultSuiteUnavailable();
if (unavailable !== null) {
  console.error(`faults: cannot run: ${unavailable}`);
  process.exit(2);
}
// Ctrl-C still stops the run's processes and removes its directory (the engine cleans up on exit).
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => process.exit(130));

const base = values.short ? SHORT_RUN : FULL_RUN;
const seconds = integer(values.seconds, 'seconds');
const seed = integer(values.seed, 'seed') ?? randomSeed();
const result = await runFaultSuite({
  ...base,
  seed,
  sends: integer(values.sends, 'sends') ?? base.sends,
  sendMs: seconds === undefined ? base.sendMs : seconds * 1000,
  faultRounds: integer(values.rounds, 'rounds') ?? base.faultRounds,
  log: (line) => console.log(line),
});
console.log(formatReport(result, `npm run faults -- ${values.short ? '--short ' : ''}--seed ${seed}`));
if (result.failures.length > 0) {
  console.log(`server output (tails):\n${result.serverOutput}`);
  process.exit(1);
}
