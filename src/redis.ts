import { Redis } from 'ioredis';

/**
 * The Redis connection that HTTP rate limits and socket counts share between processes (REDIS_URL). It fails
 * fast rather than queueing: while Redis is unreachable a command errors at once (after at most one second),
 * and each limit falls back to what this process knows, so a Redis outage never holds up a request.
 */
export function createLimitsRedis(url: string, onError: (error: Error) => void): Redis {
  const redis = new Redis(url, {
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    commandTimeout: 1000,
  });
  redis.on('error', onError);
  return redis;
}

/** Closes a limits connection without waiting long for an unreachable Redis. */
export async function closeLimitsRedis(redis: Redis): Promise<void> {
  const timeout = new Promise((resolve) => setTimeout(resolve, 1000).unref());
  await Promise.race([redis.quit().catch(() => undefined), timeout]);
  redis.disconnect();
}
