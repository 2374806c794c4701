// `npm run bench -- <scenario|all> [--db embedded|postgres] [--quick]`: drives a real server process over
// real HTTP from worker threads, prints a table per scenario and writes bench/results/<scenario>-<db>.json.
import { report, type BenchResult } from './lib/report.ts';
import { attachments } from './scenarios/attachments.ts';
import { fanout } from './scenarios/fanout.ts';
import { history } from './scenarios/history.ts';
import { idle } from './scenarios/idle.ts';
import { search } from './scenarios/search.ts';
import { sendRest } from './scenarios/send-rest.ts';
import { sendWs } from './scenarios/send-ws.ts';
import { startup } from './scenarios/startup.ts';
import { unread } from './scenarios/unread.ts';
import { webhooks } from './scenarios/webhooks.ts';
import { writeFloor } from './scenarios/write-floor.ts';

type Scenario = (db: 'embedded' | 'postgres', isQuick: boolean) => Promise<BenchResult>;
const SCENARIOS: Record<string, Scenario> = {
  'send-rest': sendRest,
  'send-ws': sendWs,
  fanout,
  idle,
  history,
  search,
  unread,
  startup,
  webhooks,
  attachments,
  'write-floor': writeFloor,
};

const args = process.argv.slice(2);
const name = args.find((arg) => !arg.startsWith('--')) ?? 'all';
const dbFlag = args.indexOf('--db');
const db = (dbFlag >= 0 ? args[dbFlag + 1] : process.env.DATABASE_URL ? 'postgres' : 'embedded') as
  'embedded' | 'postgres';
const isQuick = args.includes('--quick');

if (!['embedded', 'postgres'].includes(db) || (name !== 'all' && !(name in SCENARIOS))) {
  console.error(
    `usage: npm run bench -- <${Object.keys(SCENARIOS).join('|')}|all> [--db embedded|postgres] [--quick]`,
  );
  process.exit(2);
}
for (const [scenario, run] of Object.entries(SCENARIOS)) {
  if (name !== 'all' && name !== scenario) continue;
  report(await run(db, isQuick), isQuick);
}
