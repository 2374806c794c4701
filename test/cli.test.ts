import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { decodeProtectedHeader, jwtVerify } from 'jose';
import { describe, expect, it } from 'vitest';
import { createServerDatabase, describeWithPostgres } from './helpers/database.ts';
import { runCli, tempDataDir } from './helpers/processes.ts';

async function cli(args: string[], env: Record<string, string>) {
  const result = await runCli(args, env);
  expect(result.code, `${args.join(' ')}\n${result.stdout}\n${result.stderr}`).toBe(0);
  return JSON.parse(result.stdout) as unknown;
}

/** The operator's whole workflow: tenants, key rotation, tokens, migrations. */
async function operatorWorkflow(env: Record<string, string>) {
  expect(await cli(['migrate'], env)).toEqual({ migrated: true });
  const created = (await cli(['tenant', 'create', 'Acme'], env)) as {
    tenant: { id: string; name: string };
    api_key: { id: string; secret: string };
  };
  expect(created.tenant.name).toBe('Acme');
  expect(created.api_key.secret).toMatch(/^psk_/);

  const list = (await cli(['tenant', 'list'], env)) as { id: string }[];
  expect(list.map((tenant) => tenant.id)).toContain(created.tenant.id);

  const second = (await cli(['key', 'create', created.tenant.id], env)) as { id: string; secret: string };
  const revoked = (await cli(['key', 'revoke', created.tenant.id, created.api_key.id], env)) as {
    revoked_at: string | null;
  };
  expect(revoked.revoked_at).not.toBeNull();

  const minted = (await cli(['token', created.tenant.id, 'alice', '--ttl', '600'], env)) as {
    token: string;
    expires_at: string;
  };
  // Signed with the newest live key, verifiable with that key's secret exactly as the contract says.
  expect(decodeProtectedHeader(minted.token)).toMatchObject({ alg: 'HS256', kid: second.id });
  const { payload } = await jwtVerify(minted.token, new TextEncoder().encode(second.secret), {
    algorithms: ['HS256'],
  });
  expect(payload.sub).toBe('alice');
  expect((payload.exp ?? 0) - Math.floor(Date.now() / 1000)).toBeLessThanOrEqual(600);
}

describe('parley CLI on the embedded database', () => {
  it('documents every command with --help', async () => {
    const top = await runCli(['--help'], {});
    expect(top.code).toBe(0);
    for (const command of ['migrate', 'tenant', 'key', 'token', 'admin-token', 'jobs'])
      expect(top.stdout).toContain(command);
    for (const args of [
      ['tenant', 'create', '--help'],
      ['tenant', 'list', '--help'],
      ['key', 'create', '--help'],
      ['key', 'revoke', '--help'],
      ['token', '--help'],
      ['admin-token', 'rotate', '--help'],
      ['migrate', '--help'],
      ['jobs', 'status', '--help'],
      ['jobs', 'retry', '--help'],
    ]) {
      const help = await runCli(args, {});
      expect(help.code, args.join(' ')).toBe(0);
      expect(help.stdout).toContain('Usage: parley');
    }
    // Ten processes one after another, each about 1.6 s alone on this machine: 27 s was seen in a loaded run.
  }, 120_000);

  it('creates tenants, rotates keys and mints tokens', async () => {
    await operatorWorkflow({ PARLEY_DATA_DIR: tempDataDir() });
  }, 120_000);

  it('refuses bad arguments with a message and a non-zero exit', async () => {
    const dataDir = tempDataDir();
    const badUuid = await runCli(['token', 'not-a-uuid', 'alice'], { PARLEY_DATA_DIR: dataDir });
    expect(badUuid.code).not.toBe(0);
    expect(badUuid.stderr).toMatch(/tenant_id must be a UUID/);
    const badUser = await runCli(['token', '01a20000-0000-7000-8000-000000000000', 'no spaces'], {
      PARLEY_DATA_DIR: dataDir,
    });
    expect(badUser.stderr).toMatch(/user id must be/);
    const unknownTenant = await runCli(['token', '01a20000-0000-7000-8000-000000000000', 'alice'], {
      PARLEY_DATA_DIR: dataDir,
    });
    expect(unknownTenant.code).toBe(1);
    expect(unknownTenant.stderr).toMatch(/does not exist or has no live api key/);
  }, 60_000);

  it('will not open an embedded database another live process holds', async () => {
    const dataDir = tempDataDir();
    writeFileSync(path.join(dataDir, 'parley.pid'), String(process.pid));
    const result = await runCli(['tenant', 'list'], { PARLEY_DATA_DIR: dataDir });
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(new RegExp(`in use by process ${process.pid}`));
  });
});

describeWithPostgres('parley CLI with DATABASE_URL', () => {
  it('runs the same workflow on PostgreSQL', async () => {
    const database = await createServerDatabase();
    try {
      await operatorWorkflow({
        DATABASE_URL: database.url,
        PARLEY_SECRET_KEY: 'cli-test-server-key-0123456789abcdef',
      });
    } finally {
      await database.drop();
    }
  }, 120_000);
});
