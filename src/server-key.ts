import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';

/**
 * The master key API key secrets are derived from. PARLEY_SECRET_KEY wins; otherwise a key is generated
 * once into the data directory (mode 0600). Every process serving a deployment must see the same key.
 */
export function loadServerKey(
  configured: string | undefined,
  dataDir: string,
): { key: string; source: string } {
  if (configured !== undefined) return { key: configured, source: 'PARLEY_SECRET_KEY' };
  const file = path.join(dataDir, 'secret.key');
  mkdirSync(dataDir, { recursive: true });
  try {
    // 'wx' fails if the file exists, so two processes starting together cannot both write one.
    writeFileSync(file, randomBytes(32).toString('base64url'), { flag: 'wx', mode: 0o600 });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  }
  const key = readFileSync(file, 'utf8').trim();
  if (key.length < 32) throw new Error(`${file} holds a key shorter than 32 characters`);
  return { key, source: file };
}
