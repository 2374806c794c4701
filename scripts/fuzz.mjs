// `npm run fuzz`: the API fuzzer of test/fuzz.test.ts, longer and with a fresh seed each run (CI runs it
// short, with a fixed seed). FUZZ_RUNS sets how many HTTP requests (socket frames and upgrades: a fifth as
// many each); FUZZ_SEED repeats a run. Runs on the embedded database, or on DATABASE_URL's server when set.
import { spawnSync } from 'node:child_process';

const seed = process.env.FUZZ_SEED ?? String(Math.floor(Math.random() * 2 ** 31));
const runs = process.env.FUZZ_RUNS ?? '20000';
process.stdout.write(
  `fuzz: seed ${seed}, ${runs} requests; FUZZ_SEED=${seed} npm run fuzz repeats this run\n`,
);
const result = spawnSync('npx', ['vitest', 'run', 'test/fuzz.test.ts'], {
  stdio: 'inherit',
  env: { ...process.env, FUZZ_SEED: seed, FUZZ_RUNS: runs },
});
process.exit(result.status ?? 1);
