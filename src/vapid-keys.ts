import { eq } from 'drizzle-orm';
import webpush from 'web-push';
import type { Orm } from './db/client.ts';
import { settings } from './db/schema/control.ts';
import { createSealedBox } from './sealed-box.ts';

/** The key pair and contact Web Push messages are signed with (VAPID, RFC 8292). */
export interface VapidKeys {
  /** Base64url, uncompressed P-256 (65 bytes): what browsers subscribe with. */
  publicKey: string;
  /** Base64url, the 32-byte private scalar. */
  privateKey: string;
  /** `mailto:` or `https:`: whom a push service contacts about this server's traffic. */
  subject: string;
}

const SETTING = 'vapid_keys';

/**
 * PARLEY_VAPID_PUBLIC_KEY and PARLEY_VAPID_PRIVATE_KEY when set; otherwise a pair generated once and kept in
 * the database's settings, the private key sealed with the server key, so every process of the deployment
 * signs with the same pair (browsers subscribed with its public key) and a copy of the database alone does
 * not give it away. Two processes generating at once keep the first one stored.
 */
export async function resolveVapidKeys(
  orm: Orm,
  serverKey: string,
  configured: { publicKey: string; privateKey: string } | undefined,
  subject: string,
): Promise<VapidKeys> {
  if (configured !== undefined) return { ...configured, subject };
  const box = createSealedBox(serverKey, 'vapid-private-key');
  const generated = webpush.generateVAPIDKeys();
  await orm
    .insert(settings)
    .values({
      name: SETTING,
      value: JSON.stringify({ public_key: generated.publicKey, private_key: box.seal(generated.privateKey) }),
    })
    .onConflictDoNothing();
  const [stored] = await orm.select().from(settings).where(eq(settings.name, SETTING));
  if (!stored) throw new Error('the VAPID keys setting vanished');
  const value = JSON.parse(stored.value) as { public_key: string; private_key: string };
  return { publicKey: value.public_key, privateKey: box.open(value.private_key), subject };
}

/**
 * The keys as the server uses them: resolved on first use (the first subscription or push), then kept; a
 * failed resolution is tried again on the next use.
 */
export function lazyVapidKeys(resolve: () => Promise<VapidKeys>): () => Promise<VapidKeys> {
  let keys: Promise<VapidKeys> | undefined;
  return () => {
    keys ??= resolve().catch((error: unknown) => {
      keys = undefined;
      throw error;
    });
    return keys;
  };
}
