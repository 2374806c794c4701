import { eq, sql } from 'drizzle-orm';
import type { Orm, Tx } from '../../db/client.ts';
import { settings } from '../../db/schema/control.ts';

// The web demo keeps the id of its tenant in the deployment's settings.

const DEMO_TENANT_SETTING = 'web_demo_tenant_id';

/** The web demo's tenant id, if one was made. */
export async function findDemoTenantId(orm: Orm | Tx): Promise<string | null> {
  const [row] = await orm
    .select({ value: settings.value })
    .from(settings)
    .where(eq(settings.name, DEMO_TENANT_SETTING));
  return row?.value ?? null;
}

/** Records `tenantId` as the web demo's tenant, replacing an earlier one (deleted by an operator). */
export async function saveDemoTenantId(tx: Tx, tenantId: string): Promise<void> {
  await tx
    .insert(settings)
    .values({ name: DEMO_TENANT_SETTING, value: tenantId })
    .onConflictDoUpdate({ target: settings.name, set: { value: tenantId } });
}

/** Takes the lock that makes one process at a time create the demo tenant (released at commit). */
export async function lockDemoSetup(tx: Tx): Promise<void> {
  await tx.execute(sql`SELECT pg_advisory_xact_lock(hashtext('parley:web-demo'))`);
}
