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
      ...common,
      summary: 'Revoke an api key; requests and user tokens signed with it are refused from now on',
      params: ApiKeyParams,
      response: { 200: ApiKey, ...errorResponses('not_found') },
    },
    handler: (request) => tenants.revokeApiKey(request.params.tenant_id, request.params.key_id),
  });
}
