import type { CredentialChange } from '../auth/credential-cache.ts';
import type { Static } from 'typebox';
import type { Orm, Tx } from '../../db/client.ts';
import { notFound } from '../../errors.ts';
import { newId } from '../../ids.ts';
import { deriveApiKeySecret, hashSecret } from './api-key-secrets.ts';
import {
  deleteTenant as deleteTenantRow,
  findNewestLiveApiKey,
  findTenant,
  insertApiKey,
  insertTenant,
  listApiKeys as listApiKeyRows,
  listTenants as listTenantRows,
  liveApiKeyIds,
  updateTenant as updateTenantRow,
  revokeApiKey as revokeApiKeyRow,
  type ApiKeyRow,
  type TenantRow,
} from './tenants.repository.ts';
import type { ApiKey, NewApiKey as NewApiKeySchema, Tenant } from './tenants.schemas.ts';

/** A tenant as the admin API shows it. */
export type TenantView = Static<typeof Tenant>;
/** An api key's public facts; the secret is shown only once, at creation. */
export type ApiKeyView = Static<typeof ApiKey>;
/** A newly created key with its secret. */
export type NewApiKey = Static<typeof NewApiKeySchema>;

export interface TenantsServiceDeps {
  orm: Orm;
  /** Master key that api key secrets are derived from. */
  serverKey: string;
  /** Told after a key is revoked or a tenant deleted, so no process keeps trusting a cached credential. */
  onCredentialsChanged: (change: CredentialChange) => void;
}

const toTenantView = (row: TenantRow): TenantView => ({
  id: row.id,
  name: row.name,
  push_previews: row.pushPreviews,
  storage_quota_bytes: row.storageQuotaBytes,
  created_at: row.createdAt.toISOString(),
});
const toApiKeyView = (row: ApiKeyRow): ApiKeyView => ({
  id: row.id,
  created_at: row.createdAt.toISOString(),
  revoked_at: row.revokedAt?.toISOString() ?? null,
});

/** Operator use cases: tenants and their api keys. Shared by the admin API, the CLI and first-start setup. */
export function createTenantsService({ orm, serverKey, onCredentialsChanged }: TenantsServiceDeps) {
  const newApiKey = (tenantId: string) => {
    const id = newId();
    const secret = deriveApiKeySecret(serverKey, id);
    return { id, secret, row: { id, secretHash: hashSecret(secret) }, tenantId };
  };

  const requireTenant = async (tenantId: string): Promise<TenantRow> => {
    const tenant = await findTenant(orm, tenantId);
    if (!tenant) throw notFound('tenant');
    return tenant;
  };

  return {
    /** Creates a tenant with its first api key, in one transaction (or inside the caller's `within`). */
    async createTenant(
      input: { name: string },
      within?: Tx,
    ): Promise<{ tenant: TenantView; api_key: NewApiKey }> {
      return (within ?? orm).transaction(async (tx) => {
        const tenant = await insertTenant(tx, { id: newId(), name: input.name });
        const key = newApiKey(tenant.id);
        await insertApiKey(tx, tenant.id, key.row);
        return { tenant: toTenantView(tenant), api_key: { id: key.id, secret: key.secret } };
      });
    },

    /** A page of tenants, oldest first. */
    async listTenants(page: { afterId: string | undefined; limit: number }): Promise<TenantView[]> {
      return (await listTenantRows(orm, page)).map(toTenantView);
    },

    async getTenant(tenantId: string): Promise<TenantView> {
      return toTenantView(await requireTenant(tenantId));
    },

    async updateTenant(
      tenantId: string,
      input: { name?: string; push_previews?: boolean; storage_quota_bytes?: number | null },
    ): Promise<TenantView> {
      const row = await updateTenantRow(orm, tenantId, {
        ...(input.name === undefined ? {} : { name: input.name }),
        ...(input.push_previews === undefined ? {} : { pushPreviews: input.push_previews }),
        ...(input.storage_quota_bytes === undefined ? {} : { storageQuotaBytes: input.storage_quota_bytes }),
      });
      if (!row) throw notFound('tenant');
      return toTenantView(row);
    },

    /** Deletes a tenant and everything it owns; its keys stop working at once. */
    async deleteTenant(tenantId: string): Promise<void> {
      if (!(await deleteTenantRow(orm, tenantId))) throw notFound('tenant');
      onCredentialsChanged({ kind: 'tenant_deleted', tenantId });
    },

    /** Adds a key; older keys stay live until revoked, which is how secrets are rotated. */
    async createApiKey(tenantId: string): Promise<NewApiKey> {
      await requireTenant(tenantId);
      const key = newApiKey(tenantId);
      await insertApiKey(orm, tenantId, key.row);
      return { id: key.id, secret: key.secret };
    },

    async listApiKeys(tenantId: string): Promise<ApiKeyView[]> {
      await requireTenant(tenantId);
      return (await listApiKeyRows(orm, tenantId)).map(toApiKeyView);
    },

    /** The id of the tenant's newest live key (the CLI signs user tokens with it); undefined if none. */
    async newestLiveApiKeyId(tenantId: string): Promise<string | undefined> {
      return (await findNewestLiveApiKey(orm, tenantId))?.id;
    },

    /**
     * Which of these api keys are live (exist, not revoked); a deleted tenant's keys are gone. The real-time
     * hub asks before carrying out a socket's frame, and ends the sockets whose key is not.
     */
    liveApiKeyIds(keyIds: readonly string[]): Promise<Set<string>> {
      return liveApiKeyIds(orm, keyIds);
    },

    /** Revokes a key: requests and user tokens signed with it are refused from now on. */
    async revokeApiKey(tenantId: string, keyId: string): Promise<ApiKeyView> {
      const row = await revokeApiKeyRow(orm, tenantId, keyId);
      if (!row) throw notFound('api key');
      onCredentialsChanged({ kind: 'api_key_revoked', keyId: row.id });
      return toApiKeyView(row);
    },
  };
}

export type TenantsService = ReturnType<typeof createTenantsService>;
