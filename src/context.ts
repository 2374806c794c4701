import { AppError } from './errors.ts';

/** Who is calling, once their credential has been checked. */
export type Principal =
  | { kind: 'operator' }
  | { kind: 'backend'; tenantId: string; keyId: string }
  | { kind: 'user'; tenantId: string; userId: string; keyId: string; via: 'token' | 'api_key' };

/** The acting party inside a tenant: its backend, or one of its users. */
export type Actor = { kind: 'backend'; keyId: string } | { kind: 'user'; userId: string; keyId: string };

/** What every tenant use case receives first: the tenant it runs in and who is acting. */
export interface TenantContext {
  tenantId: string;
  actor: Actor;
}

/** The tenant context of a tenant principal. */
export function tenantContextOf(principal: Exclude<Principal, { kind: 'operator' }>): TenantContext {
  return principal.kind === 'backend'
    ? { tenantId: principal.tenantId, actor: { kind: 'backend', keyId: principal.keyId } }
    : {
        tenantId: principal.tenantId,
        actor: { kind: 'user', userId: principal.userId, keyId: principal.keyId },
      };
}

/** The user a request acts for; user-facing use cases (conversations, messages) require one. */
export function actingUserId(ctx: TenantContext): string {
  if (ctx.actor.kind !== 'user') {
    throw new AppError(
      'forbidden',
      'this is done as a user: send a user token, or an api key with X-Parley-User',
    );
  }
  return ctx.actor.userId;
}

/** Throws 403 unless the tenant's backend itself is acting (an api key without X-Parley-User). */
export function requireBackend(ctx: TenantContext, action: string): void {
  if (ctx.actor.kind !== 'backend') throw new AppError('forbidden', `only the tenant backend may ${action}`);
}
