import { randomUUID } from 'node:crypto';
import type { FastifyBaseLogger } from 'fastify';
import type { Redis } from 'ioredis';

/** How many authenticated sockets one user and one tenant may hold at once, over every process. */
export interface ConnectionLimitSettings {
  perUser: number;
  perTenant: number;
}

/** Which limit refused a socket. */
export type ConnectionRefusal = 'user' | 'tenant';

/** A socket's place in the counts: given back when it closes. */
export interface ConnectionLease {
  release(): void;
}

/** How long a socket's entry in Redis lives unless its process renews it, and how often it renews. */
export interface LeaseTimings {
  ttlMs: number;
  renewEveryMs: number;
}

const DEFAULT_TIMINGS: LeaseTimings = { ttlMs: 30_000, renewEveryMs: 10_000 };

/**
 * Admits a socket if its user and its tenant are under their limits, and counts it, atomically across
 * processes. Each count is a sorted set of the sockets it holds, scored by when their entry expires: entries
 * past their score are dropped before counting, so the sockets of a process that died (kill -9, a lost host)
 * stop counting within the TTL, while a live process renews its entries. 1: the user is full; 2: the tenant.
 */
const ACQUIRE = `
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[4]) then return 1 end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[1])
if redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[5]) then return 2 end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[3])
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[6])
redis.call('PEXPIRE', KEYS[2], ARGV[6])
return 0
`;

type AcquireCommand = (
  userKey: string,
  tenantKey: string,
  now: number,
  expiresAt: number,
  member: string,
  perUser: number,
  perTenant: number,
  ttlMs: number,
) => Promise<number>;

interface Held {
  userKey: string;
  tenantKey: string;
  member: string;
}

/** The Redis key of a user's or a tenant's sockets. Tenant ids are UUIDs, so `:` cannot be ambiguous. */
const userKeyOf = (tenantId: string, userId: string) => `parley:ws:v1:user:${tenantId}:${userId}`;
const tenantKeyOf = (tenantId: string) => `parley:ws:v1:tenant:${tenantId}`;

/**
 * Counts the authenticated sockets of each user and tenant, and refuses those past their limit
 * (docs/REALTIME.md, "Limits"). With Redis the counts are those of every process sharing it; without, or
 * while Redis cannot be reached, those of this process alone. The gateway asks before a socket joins the hub
 * and releases the lease when it closes; the per-process limit is the gateway's own (it needs no sharing).
 */
export class ConnectionLimits {
  private readonly localByUser = new Map<string, number>();
  private readonly localByTenant = new Map<string, number>();
  /** Sockets this process holds, to renew in Redis. */
  private readonly held = new Set<Held>();
  private readonly renewTimer: NodeJS.Timeout | undefined;
  private readonly redis: Redis | undefined;
  private readonly processId: string;
  private readonly log: FastifyBaseLogger;
  private readonly timings: LeaseTimings;

  constructor(
    private readonly settings: ConnectionLimitSettings,
    options: { redis?: Redis | undefined; processId: string; log: FastifyBaseLogger; timings?: LeaseTimings },
  ) {
    this.redis = options.redis;
    this.processId = options.processId;
    this.log = options.log;
    this.timings = options.timings ?? DEFAULT_TIMINGS;
    if (this.redis !== undefined) {
      if (!('parleyAcquireSocket' in this.redis))
        this.redis.defineCommand('parleyAcquireSocket', { numberOfKeys: 2, lua: ACQUIRE });
      this.renewTimer = setInterval(() => this.renew(), this.timings.renewEveryMs);
      this.renewTimer.unref();
    }
  }

  /** Counts a socket of a user, or says which limit refuses it. */
  async acquire(tenantId: string, userId: string): Promise<ConnectionLease | ConnectionRefusal> {
    const held: Held = {
      userKey: userKeyOf(tenantId, userId),
      tenantKey: tenantKeyOf(tenantId),
      member: `${this.processId}:${randomUUID()}`,
    };
    const refusal =
      this.redis === undefined ? this.refusalByLocalCounts(held) : await this.acquireInRedis(held);
    if (refusal !== null) return refusal;
    this.count(held, 1);
    this.held.add(held);
    let isReleased = false;
    return {
      release: () => {
        if (isReleased) return;
        isReleased = true;
        this.count(held, -1);
        this.held.delete(held);
        this.redis
          ?.multi()
          .zrem(held.userKey, held.member)
          .zrem(held.tenantKey, held.member)
          .exec()
          // Not fatal: the entry expires within the TTL once this process stops renewing it.
          .catch((error: unknown) => this.log.debug({ err: error }, 'releasing a socket count failed'));
      },
    };
  }

  /** Stops renewing; this process's entries expire within the TTL (a closing server closes its sockets). */
  close(): void {
    clearInterval(this.renewTimer);
  }

  private refusalByLocalCounts(held: Held): ConnectionRefusal | null {
    if ((this.localByUser.get(held.userKey) ?? 0) >= this.settings.perUser) return 'user';
    if ((this.localByTenant.get(held.tenantKey) ?? 0) >= this.settings.perTenant) return 'tenant';
    return null;
  }

  private async acquireInRedis(held: Held): Promise<ConnectionRefusal | null> {
    const now = Date.now();
    const acquire = (this.redis as unknown as { parleyAcquireSocket: AcquireCommand }).parleyAcquireSocket;
    try {
      const result = await acquire.call(
        this.redis,
        held.userKey,
        held.tenantKey,
        now,
        now + this.timings.ttlMs,
        held.member,
        this.settings.perUser,
        // Redis compares numbers; "inf" is how Lua's tonumber spells no limit.
        Number.isFinite(this.settings.perTenant) ? this.settings.perTenant : Number.MAX_SAFE_INTEGER,
        this.timings.ttlMs,
      );
      return result === 1 ? 'user' : result === 2 ? 'tenant' : null;
    } catch (error) {
      // Redis unreachable: this process's own counts decide; the renewal adds the socket once Redis is back.
      this.log.warn({ err: error }, 'socket limits: Redis unreachable, counting this process only');
      return this.refusalByLocalCounts(held);
    }
  }

  private count(held: Held, delta: 1 | -1): void {
    for (const [counts, key] of [
      [this.localByUser, held.userKey],
      [this.localByTenant, held.tenantKey],
    ] as const) {
      const next = (counts.get(key) ?? 0) + delta;
      if (next > 0) counts.set(key, next);
      else counts.delete(key);
    }
  }

  /** Pushes every held socket's expiry forward (and puts them back after Redis lost them, e.g. a restart). */
  private renew(): void {
    if (this.redis === undefined || this.held.size === 0) return;
    const expiresAt = Date.now() + this.timings.ttlMs;
    const byKey = new Map<string, string[]>();
    for (const held of this.held) {
      for (const key of [held.userKey, held.tenantKey]) {
        const members = byKey.get(key) ?? [];
        members.push(held.member);
        byKey.set(key, members);
      }
    }
    const pipeline = this.redis.pipeline();
    for (const [key, members] of byKey) {
      pipeline.zadd(key, ...members.flatMap((member) => [expiresAt, member]));
      pipeline.pexpire(key, this.timings.ttlMs);
    }
    pipeline
      .exec()
      .catch((error: unknown) => this.log.warn({ err: error }, 'socket limits: renewing counts failed'));
  }
}
