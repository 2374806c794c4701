import { readFileSync } from 'node:fs';
import pg from 'pg';
import { PGlite } from '@electric-sql/pglite';
import { btree_gin } from '@electric-sql/pglite/contrib/btree_gin';
import { pg_trgm } from '@electric-sql/pglite/contrib/pg_trgm';
import path from 'node:path';
import { ADMIN_TOKEN, call, type BenchDatabase } from './server.ts';

/** A benchmark's tenant and its api key. */
export interface BenchTenant {
  id: string;
  apiKey: { id: string; secret: string };
}

export async function createTenant(base: string): Promise<BenchTenant> {
  const created = await call<{ tenant: { id: string }; api_key: { id: string; secret: string } }>(
    base,
    'POST',
    '/v1/admin/tenants',
    ADMIN_TOKEN,
    { name: 'bench' },
  );
  return { id: created.tenant.id, apiKey: created.api_key };
}

/** Runs `work` over `items`, `concurrency` at a time. */
export async function inParallel<T, R>(
  items: T[],
  concurrency: number,
  work: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  const results: R[] = new Array<R>(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      for (let index = next++; index < items.length; index = next++) {
        results[index] = await work(items[index] as T, index);
      }
    }),
  );
  return results;
}

/** Creates users through the API (PUT /v1/users/{id}). */
export async function putUsers(base: string, tenant: BenchTenant, userIds: string[]): Promise<void> {
  await inParallel(userIds, 16, (userId) =>
    call(base, 'PUT', `/v1/users/${userId}`, tenant.apiKey.secret, {}),
  );
}

/** Creates a conversation as `creator` with `members`, then adds any beyond the first 1,000 in batches. */
export async function createConversation(
  base: string,
  tenant: BenchTenant,
  creator: string,
  type: 'group' | 'channel',
  members: string[],
): Promise<string> {
  const { id } = await call<{ id: string }>(
    base,
    'POST',
    '/v1/conversations',
    tenant.apiKey.secret,
    { type, name: `${type} of ${creator}`, members: members.slice(0, 1000) },
    creator,
  );
  for (let start = 1000; start < members.length; start += 1000) {
    await call(
      base,
      'POST',
      `/v1/conversations/${id}/members`,
      tenant.apiKey.secret,
      { user_ids: members.slice(start, start + 1000) },
      creator,
    );
  }
  return id;
}

/**
 * Runs bulk SQL as the database owner (row-level security does not apply to the owner): how benchmarks
 * seed a million rows without a million requests. The embedded database must not be open elsewhere.
 */
export async function runOwnerSql(database: BenchDatabase, statements: string[]): Promise<void> {
  if (database.url !== undefined) {
    const client = new pg.Client({ connectionString: database.url });
    await client.connect();
    try {
      for (const statement of statements) await client.query(statement);
    } finally {
      await client.end();
    }
    return;
  }
  const db = new PGlite({
    dataDir: path.join(database.dataDir, 'pglite'),
    extensions: { pg_trgm, btree_gin },
  });
  try {
    for (const statement of statements) await db.exec(statement);
  } finally {
    await db.close();
  }
}

/** CPU seconds (user + system) and resident memory of a process, from /proc. */
export function processStats(pid: number): { cpuSeconds: number; rssKiB: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name (which may hold spaces) start after the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[11]) + Number(fields[12]); // utime, stime (fields 14 and 15)
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const rss = /VmRSS:\s+(\d+) kB/.exec(status)?.[1];
  return { cpuSeconds: ticks / 100, rssKiB: Number(rss ?? 0) };
}

/**
 * CPU seconds (user + system) spent so far by the PostgreSQL backends connected to the bench database
 * (its server's connections), from /proc: with the server process's own, what one request costs in all,
 * a figure the other work on the machine changes far less than a latency. 0 on the embedded database
 * (it runs inside the server process, whose CPU already counts it).
 */
export async function databaseCpuSeconds(database: BenchDatabase): Promise<number> {
  if (database.url === undefined) return 0;
  const client = new pg.Client({ connectionString: database.url });
  await client.connect();
  try {
    const { rows } = await client.query<{ pid: number }>(
      'SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()',
    );
    let seconds = 0;
    for (const { pid } of rows) {
      try {
        seconds += processStats(pid).cpuSeconds;
      } catch {
        // The backend ended meanwhile.
      }
    }
    return seconds;
  } finally {
    await client.end();
  }
}
