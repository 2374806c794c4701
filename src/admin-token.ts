import { createHash, randomBytes } from 'node:crypto';
import { eq } from 'drizzle-orm';
import type { Orm } from './db/client.ts';
import { settings } from './db/schema/control.ts';

const SETTING = 'admin_token_sha256';
/** How long a server trusts the stored hash before reading it again: a rotation takes effect this fast. */
export const STORED_ADMIN_TOKEN_TTL_MS = 5000;

/** The operator token in effect: its hash, and the token itself only when this call generated it. */
export interface AdminToken {
  hash: string;
  /** Set once, on the start that generated the token, so it can be shown to the operator. */
  generated: string | null;
}

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');
const newAdminToken = () => `padm_${randomBytes(32).toString('base64url')}`;

/**
 * PARLEY_ADMIN_TOKEN when set; otherwise a token generated on first start, stored only as a hash in the
 * database so that every process of the deployment accepts it.
 */
export async function resolveAdminToken(orm: Orm, configured: string | undefined): Promise<AdminToken> {
  if (configured !== undefined) return { hash: sha256(configured), generated: null };
  const token = newAdminToken();
  const inserted = await orm
    .insert(settings)
    .values({ name: SETTING, value: sha256(token) })
    .onConflictDoNothing()
    .returning();
  if (inserted.length > 0) return { hash: sha256(token), generated: token };
  const [stored] = await orm.select().from(settings).where(eq(settings.name, SETTING));
  if (!stored) throw new Error('admin token setting vanished');
  return { hash: stored.value, generated: null };
}

/**
 * Replaces the stored operator token with a new one (`parley admin-token rotate`) and returns it; the
 * previous one stops working on every server within STORED_ADMIN_TOKEN_TTL_MS. Servers started with
 * PARLEY_ADMIN_TOKEN do not read the stored one.
 */
export async function rotateAdminToken(orm: Orm): Promise<string> {
  const token = newAdminToken();
  await orm
    .insert(settings)
    .values({ name: SETTING, value: sha256(token) })
    .onConflictDoUpdate({ target: settings.name, set: { value: sha256(token), createdAt: new Date() } });
  return token;
}

/**
 * The stored hash as a running server sees it: read again at most every `ttlMs`, so a token rotated by
 * the CLI (or another process) is accepted, and the old one refused, within seconds without a restart.
 * While the database cannot be read, the last hash read stays in effect.
 */
export function storedAdminTokenHash(
  orm: Orm,
  initial: string,
  ttlMs = STORED_ADMIN_TOKEN_TTL_MS,
): () => Promise<string> {
  let hash = initial;
  let readAt = Date.now();
  let reading: Promise<string> | null = null;
  return () => {
    if (Date.now() - readAt < ttlMs) return Promise.resolve(hash);
    reading ??= orm
      .select({ value: settings.value })
      .from(settings)
      .where(eq(settings.name, SETTING))
      .then(
        ([stored]) => {
          if (stored) hash = stored.value;
          readAt = Date.now();
          return hash;
        },
        () => hash,
      )
      .finally(() => {
        reading = null;
      });
    return reading;
  };
}
