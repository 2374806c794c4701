import { describe } from 'vitest';

/** The Redis server of this run, when there is one (CI sets it). Tests key everything by fresh tenants. */
export const REDIS_URL = process.env.REDIS_URL;

/**
 * A describe block that needs a Redis server shared by two app instances: it runs when REDIS_URL is set and
 * is skipped with a printed reason otherwise, like describeWithPostgres.
 */
export function describeWithRedis(name: string, body: () => void): void {
  if (REDIS_URL === undefined) {
    console.log(`skipped "${name}": it needs a Redis server; set REDIS_URL to run it`);
  }
  describe.skipIf(REDIS_URL === undefined)(name, body);
}
