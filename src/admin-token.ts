import { createHash, randomBytes } from 'node:crypto';
import { eq } from 'drizzle-orm';
import type { Orm } from './db/client.ts';
import { settings } from './db/schema/control.ts';

const SETTING = 'admin_token_sha256';

/** The operator token in effect: its hash, and the token itself only when this call generated it. */
export interface AdminToken {
  hash: string;
  /** Set once, on the start that generated the token, so it can be shown to the operator. */
  generated: string | null;
}

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

/**
 * PARLEY_ADMIN_TOKEN when set; otherwise a token generated on first start, stored only as a hash in the
 * database so that every process of the deployment accepts it.
 */
export async function resolveAdminToken(orm: Orm, configured: string | undefined): Promise<AdminToken> {
  if (configured !== undefined) return { hash: sha256(configured), generated: null };
  const token = `padm_${randomBytes(32).toString('base64url')}`;
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
