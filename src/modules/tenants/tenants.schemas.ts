import { Type } from 'typebox';
import { CursorSchema, LimitSchema, PageSchema } from '../../http/pagination.ts';
import { Nullable, Timestamp, Uuid } from '../../http/schemas.ts';

const TenantName = Type.String({ minLength: 1, maxLength: 200, examples: ['Acme'] });

const PushPreviews = Type.Boolean({
  description:
    'Whether Web Push messages and notification.requested webhooks carry a preview of the text (docs/PUSH.md)',
});

const StorageQuotaBytes = Nullable(
  Type.Integer({
    minimum: 0,
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
  { title: 'Tenant' },
);

export const NewApiKey = Type.Object(
  {
    id: Uuid,
    secret: Type.String({
      description: 'Shown once: store it now. Used as the bearer token and to sign user tokens.',
    }),
  },
  { title: 'NewApiKey' },
);

export const ApiKey = Type.Object(
  { id: Uuid, created_at: Timestamp, revoked_at: Nullable(Timestamp) },
  { title: 'ApiKey' },
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
export const CreatedTenant = Type.Object({ tenant: Tenant, api_key: NewApiKey }, { title: 'CreatedTenant' });

export const TenantParams = Type.Object({ tenant_id: Uuid });
export const ApiKeyParams = Type.Object({ tenant_id: Uuid, key_id: Uuid });

export const ListTenantsQuery = Type.Object(
  { limit: Type.Optional(LimitSchema), cursor: Type.Optional(CursorSchema) },
  { additionalProperties: false },
);
export const TenantPage = PageSchema('TenantPage', Tenant);
export const ApiKeyList = Type.Object({ data: Type.Array(ApiKey) }, { title: 'ApiKeyList' });
