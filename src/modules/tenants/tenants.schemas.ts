import { Type } from 'typebox';
import { CursorSchema, LimitSchema, PageSchema } from '../../http/pagination.ts';
import { count, EXAMPLE, Nullable, Timestamp, Uuid } from '../../http/schemas.ts';

const TenantName = Type.String({ minLength: 1, maxLength: 200, examples: ['Acme'] });

const TENANT_EXAMPLE = {
  id: EXAMPLE.tenantId,
  name: 'Acme',
  push_previews: true,
  storage_quota_bytes: null,
  created_at: '2026-11-01T09:00:00.000Z',
};
/** The key made with the tenant, revoked once a second one (`POST …/api-keys`) replaced it; and that one. */
const FIRST_KEY = {
  id: '019a9b5c-2d1f-7a2b-9c3d-4e5f6a7b8c9d',
  created_at: '2026-11-01T09:00:00.000Z',
  revoked_at: '2026-11-21T16:30:00.000Z',
};
const SECOND_KEY = {
  id: '019a9b66-0b1c-7d2e-8f3a-4b5c6d7e8f9a',
  created_at: '2026-11-21T16:00:00.000Z',
  revoked_at: null,
};

const PushPreviews = Type.Boolean({
  description:
    'Whether Web Push messages and notification.requested webhooks carry a preview of the text (docs/PUSH.md)',
});

const StorageQuotaBytes = Nullable(
  count({
    description:
      "The most bytes of attachments the tenant may keep; null: the deployment's default " +
      '(PARLEY_STORAGE_QUOTA_BYTES). Uploads beyond it answer 507 quota_exceeded.',
  }),
);

export const Tenant = Type.Object(
  {
    id: Uuid,
    name: TenantName,
    push_previews: PushPreviews,
    storage_quota_bytes: StorageQuotaBytes,
    created_at: Timestamp,
  },
  { title: 'Tenant', examples: [TENANT_EXAMPLE] },
);

export const NewApiKey = Type.Object(
  {
    id: Uuid,
    secret: Type.String({
      pattern: '^psk_[0-9a-f]{32}_[A-Za-z0-9_-]{43}$',
      maxLength: 80,
      description: 'Shown once: store it now. Used as the bearer token and to sign user tokens.',
    }),
  },
  {
    title: 'NewApiKey',
    examples: [
      {
        id: SECOND_KEY.id,
        secret: 'psk_019a9b660b1c7d2e8f3a4b5c6d7e8f9a_49-FrPso1RaUF4gaEVv6kY_mghf1aNJExNi18S8QBms',
      },
    ],
  },
);

export const ApiKey = Type.Object(
  { id: Uuid, created_at: Timestamp, revoked_at: Nullable(Timestamp) },
  {
    title: 'ApiKey',
    examples: [FIRST_KEY],
  },
);

export const CreateTenantBody = Type.Object(
  { name: TenantName },
  { title: 'CreateTenantBody', additionalProperties: false, examples: [{ name: 'Acme' }] },
);
export const UpdateTenantBody = Type.Object(
  {
    name: Type.Optional(TenantName),
    push_previews: Type.Optional(PushPreviews),
    storage_quota_bytes: Type.Optional(StorageQuotaBytes),
  },
  {
    title: 'UpdateTenantBody',
    additionalProperties: false,
    minProperties: 1,
    examples: [{ name: 'Acme Inc.' }, { push_previews: false }, { storage_quota_bytes: 53687091200 }],
  },
);
export const CreatedTenant = Type.Object(
  { tenant: Tenant, api_key: NewApiKey },
  {
    title: 'CreatedTenant',
    examples: [
      {
        tenant: TENANT_EXAMPLE,
        api_key: {
          id: FIRST_KEY.id,
          secret: 'psk_019a9b5c2d1f7a2b9c3d4e5f6a7b8c9d_ZmejahMnXWGUHIZjNT1TUBZ2IR6mhekfZHdH334DtgI',
        },
      },
    ],
  },
);

export const TenantParams = Type.Object({ tenant_id: Uuid });
export const ApiKeyParams = Type.Object({ tenant_id: Uuid, key_id: Uuid });

export const ListTenantsQuery = Type.Object(
  { limit: Type.Optional(LimitSchema), cursor: Type.Optional(CursorSchema) },
  { additionalProperties: false },
);
export const TenantPage = PageSchema('TenantPage', Tenant, { data: [TENANT_EXAMPLE], next_cursor: null });
export const ApiKeyList = Type.Object(
  { data: Type.Array(ApiKey) },
  { title: 'ApiKeyList', examples: [{ data: [FIRST_KEY, SECOND_KEY] }] },
);
