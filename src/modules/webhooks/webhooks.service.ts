import { sql } from 'drizzle-orm';
import type { Orm } from '../../db/client.ts';
import { inTenant, type TenantScope } from '../../db/tenant-scope.ts';
import { requireBackend, type TenantContext } from '../../context.ts';
import { AppError } from '../../errors.ts';
import { cursorUuid, decodeCursor, toPage } from '../../http/pagination.ts';
import { clip } from '../../clip.ts';
import { newId } from '../../ids.ts';
import { createSealedBox } from '../../sealed-box.ts';
import { ensureConsumer } from '../events/event-consumers.repository.ts';
import { PUSH_CONSUMER } from '../push/push.service.ts';
import { newWebhookSecret } from './webhook-signing.ts';
import {
  MAX_DELIVERY_ERROR_LENGTH,
  type CreateWebhookBody,
  type DeliveryStatus,
  type PatchWebhookBody,
  type WebhookDelivery,
  type WebhookEndpoint,
} from './webhooks.schemas.ts';
import {
  armLanes,
  armPendingLanesOf,
  countReplayable,
  deleteEndpoint,
  findDelivery,
  findEndpoint,
  idleLanesOf,
  insertDeliveries,
  insertEndpoint,
  insertReplay,
  listDeliveries,
  listEndpoints,
  lockLane,
  updateDelivery,
  updateEndpoint,
  type DeliveryRow,
  type EndpointRow,
} from './webhooks.repository.ts';

/** The consumer of the event log that turns events into webhook deliveries. */
export const WEBHOOK_CONSUMER = 'webhooks';
/** How long a rotated-out secret keeps signing: receivers switch to the new one meanwhile. */
export const SECRET_OVERLAP_MS = 24 * 3600 * 1000;
/** Most deliveries one replay may make; a wider window is split by the caller. */
export const MAX_REPLAY = 100_000;

/** Checks a URL a tenant gives before it is stored (the outbound module's rule). */
export type UrlCheck = (url: string) => Promise<void>;

export interface WebhooksServiceDeps {
  orm: Orm;
  serverKey: string;
  /** Refuses urls that resolve to addresses Parley must not call (see src/http/outbound.ts). */
  checkUrl: UrlCheck;
  /** Asks the sender to look for due deliveries now (a test, a retry, a replay, an enabled endpoint). */
  wake: () => void;
  /**
   * Tells this process's background work that a consumer of the log follows a tenant now, without waiting
   * for its sweep.
   */
  follow: (consumer: string, tenantId: string) => void;
}

/** Whether endpoints subscribed to these types receive the push decision (so the push consumer must run). */
const receivesNotifications = (events: readonly string[]) =>
  events.includes('*') || events.includes('notification.requested');

export function toEndpoint(row: EndpointRow): WebhookEndpoint {
  return {
    id: row.id,
    url: row.url,
    events: row.events,
    description: row.description,
    enabled: row.disabledAt === null,
    disabled_reason: row.disabledReason as WebhookEndpoint['disabled_reason'],
    disabled_at: row.disabledAt?.toISOString() ?? null,
    failing_since: row.failingSince?.toISOString() ?? null,
    created_at: row.createdAt.toISOString(),
    updated_at: row.updatedAt.toISOString(),
  };
}

export function toDelivery(row: DeliveryRow): WebhookDelivery {
  return {
    id: row.id,
    webhook_id: row.endpointId,
    webhook_message_id: row.messageId,
    type: row.type,
    source: row.source as WebhookDelivery['source'],
    conversation_id: row.eventId === null ? null : row.lane,
    status: row.status as DeliveryStatus,
    attempts: row.attempts,
    next_attempt_at: row.nextAttemptAt?.toISOString() ?? null,
    last_attempt_at: row.lastAttemptAt?.toISOString() ?? null,
    last_status_code: row.lastStatusCode,
    last_error: row.lastError === null ? null : clip(row.lastError, MAX_DELIVERY_ERROR_LENGTH),
    created_at: row.createdAt.toISOString(),
  };
}

/** The signing secrets of an endpoint that still sign now, opened: the current one first. */
export function liveSecrets(
  row: Pick<EndpointRow, 'secrets'>,
  open: (sealed: string) => string,
  now = Date.now(),
): string[] {
  return row.secrets
    .filter((secret) => secret.expires_at === null || Date.parse(secret.expires_at) > now)
    .map((secret) => open(secret.sealed));
}

/** The box webhook secrets are sealed in: they must be read back to sign, so they are not hashed. */
export const webhookSecretBox = (serverKey: string) => createSealedBox(serverKey, 'webhook-secret');

const notFound = () => new AppError('not_found', 'webhook not found');

/** Webhook endpoints of a tenant backend, their deliveries, retries and replays. */
export function createWebhooksService({ orm, serverKey, checkUrl, wake, follow }: WebhooksServiceDeps) {
  const box = webhookSecretBox(serverKey);

  const inBackendTenant = <T>(ctx: TenantContext, work: (scope: TenantScope) => Promise<T>) => {
    requireBackend(ctx, 'manage webhooks');
    return inTenant(orm, ctx.tenantId, work);
  };

  const existing = async (scope: TenantScope, id: string, lock = false) => {
    const row = await findEndpoint(scope, id, lock);
    if (!row) throw notFound();
    return row;
  };

  return {
    async create(ctx: TenantContext, body: CreateWebhookBody) {
      await checkUrl(body.url);
      const secret = newWebhookSecret();
      const row = await inBackendTenant(ctx, async (scope) => {
        // The log is followed from now on for this tenant (a no-op when another endpoint started it).
        await ensureConsumer(scope, WEBHOOK_CONSUMER);
        if (receivesNotifications(body.events)) await ensureConsumer(scope, PUSH_CONSUMER);
        return insertEndpoint(scope, {
          id: newId(),
          url: body.url,
          events: body.events,
          description: body.description ?? null,
          secrets: [{ sealed: box.seal(secret), expires_at: null }],
        });
      });
      follow(WEBHOOK_CONSUMER, ctx.tenantId);
      if (receivesNotifications(body.events)) follow(PUSH_CONSUMER, ctx.tenantId);
      return { ...toEndpoint(row), secret };
    },

    async list(ctx: TenantContext, query: { limit: number; cursor?: string }) {
      const before = query.cursor === undefined ? undefined : cursorUuid(decodeCursor(query.cursor, 1)[0]);
      const rows = await inBackendTenant(ctx, (scope) =>
        listEndpoints(scope, { limit: query.limit + 1, ...(before === undefined ? {} : { before }) }),
      );
      const page = toPage(rows, query.limit, (row) => [row.id]);
      return { data: page.data.map(toEndpoint), next_cursor: page.next_cursor };
    },

    async get(ctx: TenantContext, id: string) {
      return toEndpoint(await inBackendTenant(ctx, (scope) => existing(scope, id)));
    },

    async update(ctx: TenantContext, id: string, body: PatchWebhookBody) {
      if (body.url !== undefined) await checkUrl(body.url);
      const row = await inBackendTenant(ctx, async (scope) => {
        const current = await existing(scope, id, true);
        const wasEnabled = current.disabledAt === null;
        if (body.events !== undefined && receivesNotifications(body.events)) {
          await ensureConsumer(scope, PUSH_CONSUMER);
        }
        const updated = await updateEndpoint(scope, id, {
          ...(body.url === undefined ? {} : { url: body.url }),
          ...(body.events === undefined ? {} : { events: body.events }),
          ...(body.description === undefined ? {} : { description: body.description }),
          ...(body.enabled === undefined || body.enabled === wasEnabled
            ? {}
            : body.enabled
              ? { disabledAt: null, disabledReason: null, failingSince: null }
              : { disabledAt: new Date(), disabledReason: 'manual' }),
        });
        // Disabled, its lanes wait; enabled again, what waited goes, in order.
        if (body.enabled === false && wasEnabled) await idleLanesOf(scope, id);
        if (body.enabled === true && !wasEnabled) await armPendingLanesOf(scope, id);
        return updated;
      });
      if (body.events !== undefined && receivesNotifications(body.events))
        follow(PUSH_CONSUMER, ctx.tenantId);
      if (body.enabled === true) wake();
      return toEndpoint(row);
    },

    async remove(ctx: TenantContext, id: string) {
      const deleted = await inBackendTenant(ctx, (scope) => deleteEndpoint(scope, id));
      if (!deleted) throw notFound();
    },

    /** A new current secret; the old one keeps signing for a day, beside it. */
    async rotateSecret(ctx: TenantContext, id: string) {
      const secret = newWebhookSecret();
      const row = await inBackendTenant(ctx, async (scope) => {
        const current = await existing(scope, id, true);
        const now = Date.now();
        const overlapEnds = new Date(now + SECRET_OVERLAP_MS).toISOString();
        const kept = current.secrets
          .filter((old) => old.expires_at === null || Date.parse(old.expires_at) > now)
          .map((old) => ({
            sealed: old.sealed,
            expires_at:
              old.expires_at === null || Date.parse(old.expires_at) > Date.parse(overlapEnds)
                ? overlapEnds
                : old.expires_at,
          }));
        return updateEndpoint(scope, id, {
          secrets: [{ sealed: box.seal(secret), expires_at: null }, ...kept],
        });
      });
      return { ...toEndpoint(row), secret };
    },

    /** Sends a `webhook.test` now, through the same path as every delivery. */
    async sendTest(ctx: TenantContext, id: string) {
      const delivery = await inBackendTenant(ctx, async (scope) => {
        const endpoint = await existing(scope, id);
        if (endpoint.disabledAt !== null) {
          throw new AppError('conflict', 'the webhook is disabled; enable it first');
        }
        const deliveryId = newId();
        const now = new Date();
        await insertDeliveries(scope, [
          {
            id: deliveryId,
            endpointId: id,
            lane: deliveryId,
            source: 'test',
            type: 'webhook.test',
            payload: {
              type: 'webhook.test',
              timestamp: now.toISOString(),
              data: { webhook_id: id, message: 'A test delivery from Parley' },
            },
            messageId: `msg_${deliveryId}`,
            nextAttemptAt: now,
          },
        ]);
        return findDelivery(scope, id, deliveryId);
      });
      wake();
      if (!delivery) throw new Error('test delivery vanished');
      return toDelivery(delivery);
    },

    async listDeliveries(
      ctx: TenantContext,
      id: string,
      query: { limit: number; cursor?: string; status?: DeliveryStatus },
    ) {
      const before = query.cursor === undefined ? undefined : cursorUuid(decodeCursor(query.cursor, 1)[0]);
      const rows = await inBackendTenant(ctx, async (scope) => {
        await existing(scope, id);
        return listDeliveries(scope, id, {
          limit: query.limit + 1,
          ...(before === undefined ? {} : { before }),
          ...(query.status === undefined ? {} : { status: query.status }),
        });
      });
      const page = toPage(rows, query.limit, (row) => [row.id]);
      return { data: page.data.map(toDelivery), next_cursor: page.next_cursor };
    },

    /** Sends one delivery again, from the start of the schedule, in its place in its lane. */
    async retryDelivery(ctx: TenantContext, id: string, deliveryId: string) {
      const row = await inBackendTenant(ctx, async (scope) => {
        await existing(scope, id);
        const found = await findDelivery(scope, id, deliveryId);
        if (!found) throw new AppError('not_found', 'delivery not found');
        // The lane before the delivery, as the sender locks them.
        await lockLane(scope, id, found.lane);
        const delivery = await findDelivery(scope, id, deliveryId);
        if (!delivery) throw new AppError('not_found', 'delivery not found');
        const updated = await updateDelivery(scope, deliveryId, {
          status: 'pending',
          attempts: 0,
          nextAttemptAt: sql`now()`,
          lastError: null,
        });
        await armLanes(scope, [{ endpointId: id, lane: delivery.lane }]);
        return updated;
      });
      wake();
      return toDelivery(row);
    },

    /** Sends again every event of the log since a time that the endpoint receives. */
    async replay(ctx: TenantContext, id: string, since: string) {
      const replayed = await inBackendTenant(ctx, async (scope) => {
        const endpoint = await existing(scope, id, true);
        if (endpoint.disabledAt !== null) {
          throw new AppError('conflict', 'the webhook is disabled; enable it first');
        }
        const count = await countReplayable(scope, endpoint, since);
        if (count > MAX_REPLAY) {
          throw new AppError('validation_failed', 'the replay is too large', [
            {
              path: '/body/since',
              message: `${count} events since then; a replay sends at most ${MAX_REPLAY}: pick a later time`,
            },
          ]);
        }
        if (count === 0) return 0;
        return insertReplay(scope, endpoint, since, Array.from({ length: count }, newId));
      });
      if (replayed > 0) wake();
      return { replayed };
    },
  };
}

export type WebhooksService = ReturnType<typeof createWebhooksService>;
