import { CredentialCache } from './modules/auth/credential-cache.ts';
import { Command, InvalidArgumentError } from 'commander';
import { rotateAdminToken, STORED_ADMIN_TOKEN_TTL_MS } from './admin-token.ts';
import { loadConfig } from './config.ts';
import { configuredSecrets, createLogger } from './logger.ts';
import {
  createAuthService,
  DEFAULT_TOKEN_TTL_SECONDS,
  MAX_TOKEN_TTL_SECONDS,
} from './modules/auth/auth.service.ts';
import { createTenantsService } from './modules/tenants/tenants.service.ts';
import { isUserId } from './modules/users/user-id.ts';
import { createUsersService } from './modules/users/users.service.ts';
import { openRuntime, type Runtime } from './runtime.ts';
import { inTenant } from './db/tenant-scope.ts';
import { backgroundWorkStats } from './jobs/background-work.ts';
import { retryFailedDeliveries } from './modules/webhooks/webhooks.repository.ts';
import { collectStorageGarbage } from './modules/attachments/storage-gc.ts';
import { openStorage } from './storage/open-storage.ts';

// `parley`: the operator's command-line tool. It works on the configured database directly (the same
// environment variables as the server) and prints JSON. On the embedded database it needs the server
// stopped, since one process at a time may open it; with a running server use the admin API instead.

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

const parseUuid = (what: string) => (value: string) => {
  if (!UUID.test(value)) throw new InvalidArgumentError(`${what} must be a UUID`);
  return value.toLowerCase();
};
const parseTenantName = (value: string) => {
  if (value.length < 1 || value.length > 200) throw new InvalidArgumentError('name must be 1–200 characters');
  return value;
};
const parseUserId = (value: string) => {
  if (!isUserId(value))
    throw new InvalidArgumentError('user id must be 1–128 characters of [A-Za-z0-9_.@:-]');
  return value;
};
const parseTtl = (value: string) => {
  const ttl = Number(value);
  if (!Number.isInteger(ttl) || ttl < 60 || ttl > MAX_TOKEN_TTL_SECONDS) {
    throw new InvalidArgumentError(`ttl must be an integer from 60 to ${MAX_TOKEN_TTL_SECONDS}`);
  }
  return ttl;
};

/** Opens the runtime, runs `work`, prints its result as JSON and closes everything. */
async function withRuntime(work: (runtime: Runtime) => Promise<unknown>): Promise<void> {
  const config = loadConfig();
  const runtime = await openRuntime(
    config,
    createLogger(config.logLevel, 'stderr', configuredSecrets(config)),
  );
  try {
    const result = await work(runtime);
    process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  } finally {
    await runtime.close();
  }
}

const tenantsOf = (runtime: Runtime) =>
  createTenantsService({
    orm: runtime.db.orm,
    serverKey: runtime.serverKey,
    // The CLI cannot reach running servers' caches: they see a revocation within their cache TTL (10 s).
    onCredentialsChanged: () => {},
  });

const program = new Command('parley')
  .description(
    'Operate a Parley deployment: tenants, api keys, user tokens, the operator token, migrations, background work and stored attachments',
  )
  .showHelpAfterError();

program
  .command('migrate')
  .description('Apply pending database migrations (the server also does this at start)')
  .action(() => withRuntime(() => Promise.resolve({ migrated: true })));

const tenant = program.command('tenant').description('Create and list tenants');
tenant
  .command('create')
  .description('Create a tenant; prints its id and its first api key (the secret is shown only now)')
  .argument('<name>', 'display name, 1–200 characters', parseTenantName)
  .action((name: string) => withRuntime((runtime) => tenantsOf(runtime).createTenant({ name })));
tenant
  .command('list')
  .description('List all tenants, oldest first')
  .action(() =>
    withRuntime(async (runtime) => {
      const all = [];
      let afterId: string | undefined;
      for (;;) {
        const page = await tenantsOf(runtime).listTenants({ afterId, limit: 200 });
        all.push(...page);
        if (page.length < 200) return all;
        afterId = page.at(-1)?.id;
      }
    }),
  );

const key = program.command('key').description("Create and revoke a tenant's api keys");
key
  .command('create')
  .description('Create another api key for a tenant (rotation: older keys stay live until revoked)')
  .argument('<tenant_id>', 'tenant id', parseUuid('tenant_id'))
  .action((tenantId: string) => withRuntime((runtime) => tenantsOf(runtime).createApiKey(tenantId)));
key
  .command('revoke')
  .description('Revoke an api key; requests and user tokens signed with it are refused from now on')
  .argument('<tenant_id>', 'tenant id', parseUuid('tenant_id'))
  .argument('<key_id>', 'api key id', parseUuid('key_id'))
  .action((tenantId: string, keyId: string) =>
    withRuntime((runtime) => tenantsOf(runtime).revokeApiKey(tenantId, keyId)),
  );

const adminToken = program.command('admin-token').description('Issue the operator token for /v1/admin');
adminToken
  .command('rotate')
  .description(
    'Generate a new operator token and store its hash; the previous one stops working on every server ' +
      `within ${STORED_ADMIN_TOKEN_TTL_MS / 1000} s (the token is shown only now)`,
  )
  .action(() =>
    withRuntime(async (runtime) => {
      if (loadConfig().adminToken !== undefined) {
        process.stderr.write(
          'parley: PARLEY_ADMIN_TOKEN is set here; servers started with it accept only that token, not this one\n',
        );
      }
      return { operator_token: await rotateAdminToken(runtime.db.orm) };
    }),
  );

program
  .command('token')
  .description("Mint a user token, signed with the tenant's newest live api key")
  .argument('<tenant_id>', 'tenant id', parseUuid('tenant_id'))
  .argument('<user_id>', "the tenant's user id", parseUserId)
  .option('--ttl <seconds>', 'lifetime in seconds (60 s to 30 days)', parseTtl, DEFAULT_TOKEN_TTL_SECONDS)
  .action((tenantId: string, userId: string, options: { ttl: number }) =>
    withRuntime(async (runtime) => {
      const keyId = await tenantsOf(runtime).newestLiveApiKeyId(tenantId);
      if (keyId === undefined) throw new Error(`tenant ${tenantId} does not exist or has no live api key`);
      const auth = createAuthService({
        orm: runtime.db.orm,
        serverKey: runtime.serverKey,
        adminTokenHash: '',
        users: createUsersService({ orm: runtime.db.orm }),
        cache: new CredentialCache(),
        warn: (message) => process.stderr.write(`parley: ${message}\n`),
        maxTokenTtlSeconds: loadConfig().maxTokenTtlSeconds,
      });
      const ctx = { tenantId, actor: { kind: 'backend' as const, keyId } };
      return auth.mintUserToken(ctx, userId, options.ttl);
    }),
  );

const jobs = program
  .command('jobs')
  .description(
    'Background work: webhook deliveries and pushes waiting or failed, and how far the log readers are behind',
  );
jobs
  .command('status')
  .description('Counts by kind and state, with the age of the oldest (as GET /metrics reports them)')
  .action(() =>
    withRuntime(async (runtime) => {
      const now = Date.now();
      return (await backgroundWorkStats(runtime.db.orm)).map((row) => ({
        kind: row.kind,
        state: row.state,
        items: row.items,
        oldest: row.oldest?.toISOString() ?? null,
        oldest_age_seconds: row.oldest === null ? null : Math.round((now - row.oldest.getTime()) / 1000),
      }));
    }),
  );
jobs
  .command('retry')
  .description("Send a tenant's failed webhook deliveries again, from the start of the retry schedule")
  .argument('<tenant_id>', 'tenant id', parseUuid('tenant_id'))
  .argument('[delivery_ids...]', 'only these deliveries (all failed ones if none)')
  .option('--webhook <webhook_id>', "only this webhook endpoint's", parseUuid('webhook_id'))
  .action((tenantId: string, deliveryIds: string[], options: { webhook?: string }) =>
    withRuntime(async (runtime) => {
      const ids = deliveryIds.map(parseUuid('delivery_id'));
      const retried = await inTenant(runtime.db.orm, tenantId, (scope) =>
        retryFailedDeliveries(scope, {
          ...(options.webhook === undefined ? {} : { endpointId: options.webhook }),
          ...(ids.length === 0 ? {} : { deliveryIds: ids }),
        }),
      );
      return { retried };
    }),
  );

const attachments = program.command('attachments').description('Stored attachment bytes');
attachments
  .command('gc')
  .description(
    'Find stored objects no attachment names (an upload whose process died mid-way) and remove them',
  )
  .option('--dry-run', 'only list them')
  .action((options: { dryRun?: boolean }) =>
    withRuntime(async (runtime) => {
      const storage = openStorage(loadConfig().attachments.storage);
      try {
        const report = await collectStorageGarbage(runtime.db.orm, storage, {
          dryRun: options.dryRun === true,
        });
        return {
          scanned: report.scanned,
          foreign: report.foreign,
          orphans: report.orphans.length,
          orphan_bytes: report.orphans.reduce((sum, orphan) => sum + orphan.size, 0),
          removed: report.removed,
          stale_temp_files: report.staleTemp,
          keys: report.orphans.map((orphan) => orphan.key),
        };
      } finally {
        await storage.close?.();
      }
    }),
  );

try {
  await program.parseAsync();
} catch (error) {
  process.stderr.write(`parley: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exitCode = 1;
}
