import { count } from 'drizzle-orm';
import type { Orm } from './db/client.ts';
import { settings, tenants } from './db/schema/control.ts';
import type { NewApiKey, TenantsService, TenantView } from './modules/tenants/tenants.service.ts';

/**
 * On the very first start of a deployment with no tenant, creates a `demo` tenant so a newcomer can call
 * the API at once. Runs at most once per database, even if the demo tenant is later deleted.
 */
export async function createDemoTenantOnFirstStart(
  orm: Orm,
  tenantsService: TenantsService,
): Promise<{ tenant: TenantView; api_key: NewApiKey } | null> {
  // One transaction: a crash between marking the first start and creating the tenant must not leave a
  // deployment that never gets its demo tenant.
  return orm.transaction(async (tx) => {
    const marked = await tx
      .insert(settings)
      .values({ name: 'first_start_done', value: new Date().toISOString() })
      .onConflictDoNothing()
      .returning();
    if (marked.length === 0) return null;
    const [existing] = await tx.select({ n: count() }).from(tenants);
    if ((existing?.n ?? 0) > 0) return null;
    return tenantsService.createTenant({ name: 'demo' }, tx);
  });
}
