import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** What a scenario measured: named figures (unit in the name) and the targets they are held to. */
export interface BenchResult {
  scenario: string;
  db: 'embedded' | 'postgres';
  params: Record<string, unknown>;
  figures: Record<string, number>;
  targets: Record<string, { min?: number; max?: number }>;
  notes?: string[];
}

const RESULTS = fileURLToPath(new URL('../results', import.meta.url));

function postgresVersion(): string {
  try {
    return execFileSync('psql', ['--version'], { encoding: 'utf8' }).trim();
  } catch {
    return 'unknown';
  }
}

/** The machine a run happened on, recorded with every result. */
export function machine() {
  return {
    cores: os.cpus().length,
    cpu: os.cpus()[0]?.model ?? 'unknown',
    memory_gib: Math.round(os.totalmem() / 1024 ** 3),
    node: process.version,
    postgres: postgresVersion(),
    platform: `${os.type()} ${os.release()}`,
    date: new Date().toISOString(),
  };
}

/**
 * Prints a result as a table and writes bench/results/<scenario>-<db>.json; a --quick run writes to
 * bench/results/quick/ (not kept in git), so it never replaces the figures of a full run.
 */
export function report(result: BenchResult, isQuick: boolean): void {
  const rows = Object.entries(result.figures).map(([name, value]) => {
    const target = result.targets[name];
    const verdict =
      target === undefined
        ? ''
        : (target.min === undefined || value >= target.min) &&
            (target.max === undefined || value <= target.max)
          ? 'met'
          : 'MISSED';
    const bound =
      target === undefined ? '' : target.min !== undefined ? `>= ${target.min}` : `<= ${target.max ?? ''}`;
    return { figure: name, value: Number(value.toFixed(2)), target: bound, verdict };
  });
  console.log(`\n${result.scenario} (${result.db})`);
  console.table(rows);
  for (const note of result.notes ?? []) console.log(`  note: ${note}`);
  const directory = isQuick ? path.join(RESULTS, 'quick') : RESULTS;
  mkdirSync(directory, { recursive: true });
  writeFileSync(
    path.join(directory, `${result.scenario}-${result.db}.json`),
    `${JSON.stringify({ ...result, machine: machine() }, null, 2)}\n`,
  );
}
