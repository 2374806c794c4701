import type { App } from '../../http/app-types.ts';
import { cursorUuid, decodeCursor, toPage } from '../../http/pagination.ts';
import { errorResponses, NoContent } from '../../http/schemas.ts';
import {
  ApiKey,
  ApiKeyList,
  ApiKeyParams,
  CreatedTenant,
  CreateTenantBody,
  ListTenantsQuery,
  NewApiKey,
  UpdateTenantBody,
  Tenant,
  TenantPage,
  TenantParams,
} from './tenants.schemas.ts';
import type { TenantsService } from './tenants.service.ts';

const operator = { auth: 'operator' } as const;
const common = { tags: ['admin'], security: [{ operatorToken: [] }] };

/** /v1/admin: the operator's API for tenants and their api keys. */
export function registerTenantRoutes(app: App, tenants: TenantsService): void {
  app.post('/v1/admin/tenants', {
    config: operator,
    schema: {
      operationId: 'createTenant',
      description:
        "Creates a tenant and its first api key. The answer holds the key's secret (`psk_…`), shown this once: store it. The operator token only.",
      ...common,
      summary: 'Create a tenant and its first api key',
      body: CreateTenantBody,
      response: { 201: CreatedTenant, ...errorResponses() },
    },
    handler: async (request, reply) => reply.code(201).send(await tenants.createTenant(request.body)),
  });

  app.get('/v1/admin/tenants', {
    config: operator,
    schema: {
      operationId: 'listTenants',
      description:
        'Every tenant of the deployment, oldest first, a page at a time (`limit`, `cursor`). The operator token only.',
      ...common,
      summary: 'List tenants, oldest first',
      querystring: ListTenantsQuery,
      response: { 200: TenantPage, ...errorResponses() },
    },
    handler: async (request) => {
      const limit = request.query.limit ?? 50;
      const afterId =
        request.query.cursor === undefined ? undefined : cursorUuid(decodeCursor(request.query.cursor, 1)[0]);
      const rows = await tenants.listTenants({ afterId, limit: limit + 1 });
      return toPage(rows, limit, (tenant) => [tenant.id]);
    },
  });

  app.get('/v1/admin/tenants/:tenant_id', {
    config: operator,
    schema: {
      operationId: 'getTenant',
      description:
        'One tenant: its name, settings and creation time. Another id, or a deleted tenant, is 404. The operator token only.',
      ...common,
      summary: 'Read a tenant',
      params: TenantParams,
      response: { 200: Tenant, ...errorResponses('not_found') },
    },
    handler: (request) => tenants.getTenant(request.params.tenant_id),
  });

  app.patch('/v1/admin/tenants/:tenant_id', {
    config: operator,
    schema: {
      operationId: 'updateTenant',
      description:
        'Changes what the body names, leaves the rest: the name, `push_previews` (off: pushes carry no message text), the storage quota. The operator token only.',
      ...common,
      summary: 'Rename a tenant, turn push previews off or on, or set its storage quota',
      params: TenantParams,
      body: UpdateTenantBody,
      response: { 200: Tenant, ...errorResponses('not_found') },
    },
    handler: (request) => tenants.updateTenant(request.params.tenant_id, request.body),
  });

  app.delete('/v1/admin/tenants/:tenant_id', {
    config: operator,
    schema: {
      operationId: 'deleteTenant',
      description:
        'Deletes the tenant and everything it holds (users, conversations, messages, keys, webhooks, files, queued as removals); its api keys and user tokens stop working at once, on every process. Cannot be undone. The operator token only.',
      ...common,
      summary: 'Delete a tenant and all of its data',
      params: TenantParams,
      response: { 204: NoContent, ...errorResponses('not_found') },
    },
    handler: async (request, reply) => {
      await tenants.deleteTenant(request.params.tenant_id);
      return reply.code(204).send(null);
    },
  });

  app.post('/v1/admin/tenants/:tenant_id/api-keys', {
    config: operator,
    schema: {
      operationId: 'createApiKey',
      description:
        'Creates another api key for the tenant. The answer holds its secret, shown this once. Old keys stay live until revoked, so a backend can rotate without downtime. The operator token only.',
      ...common,
      summary: 'Create another api key (rotation: old keys stay live until revoked)',
      params: TenantParams,
      response: { 201: NewApiKey, ...errorResponses('not_found') },
    },
    handler: async (request, reply) =>
      reply.code(201).send(await tenants.createApiKey(request.params.tenant_id)),
  });

  app.get('/v1/admin/tenants/:tenant_id/api-keys', {
    config: operator,
    schema: {
      operationId: 'listApiKeys',
      description:
        "The tenant's api keys (ids, names, creation and revocation times), never their secrets. The operator token only.",
      ...common,
      summary: "List a tenant's api keys (never their secrets)",
      params: TenantParams,
      response: { 200: ApiKeyList, ...errorResponses('not_found') },
    },
    handler: async (request) => ({ data: await tenants.listApiKeys(request.params.tenant_id) }),
  });

  app.delete('/v1/admin/tenants/:tenant_id/api-keys/:key_id', {
    config: operator,
    schema: {
      operationId: 'revokeApiKey',
      description:
        'Revokes an api key: requests with it, and user tokens it signed, are refused from now on (open sockets are closed with 4401 on every process). The operator token only.',
      ...common,
      summary: 'Revoke an api key; requests and user tokens signed with it are refused from now on',
      params: ApiKeyParams,
      response: { 200: ApiKey, ...errorResponses('not_found') },
    },
    handler: (request) => tenants.revokeApiKey(request.params.tenant_id, request.params.key_id),
  });
}
