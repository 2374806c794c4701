import { and, asc, eq, sql } from 'drizzle-orm';
import { messageReactions } from '../../db/schema/messages.ts';
import { rowsOf } from '../../db/client.ts';
import { arrayParam } from '../../db/params.ts';
import type { TenantScope } from '../../db/tenant-scope.ts';

export type ReactionRow = typeof messageReactions.$inferSelect;

/** Adds a reaction; false when the user had already reacted with that emoji. */
export async function insertReaction(
  scope: TenantScope,
  reaction: { messageId: string; emoji: string; userId: string },
): Promise<boolean> {
  const rows = await scope.tx
    .insert(messageReactions)
    .values({ tenantId: scope.tenantId, ...reaction })
    .onConflictDoNothing()
    .returning({ emoji: messageReactions.emoji });
  return rows.length > 0;
}

/** Whether a message carries reactions with `emoji` already, and with how many different emoji in all. */
export async function emojiOnMessage(
  scope: TenantScope,
  messageId: string,
  emoji: string,
): Promise<{ distinct: number; isPresent: boolean }> {
  const [row] = await scope.tx
    .select({
      distinct: sql<number>`count(DISTINCT ${messageReactions.emoji})::int`,
      isPresent: sql<boolean>`coalesce(bool_or(${messageReactions.emoji} = ${emoji}), false)`,
    })
    .from(messageReactions)
    .where(and(eq(messageReactions.tenantId, scope.tenantId), eq(messageReactions.messageId, messageId)));
  return { distinct: row?.distinct ?? 0, isPresent: row?.isPresent ?? false };
}

/** Removes a reaction; false when there was none. */
export async function deleteReaction(
  scope: TenantScope,
  reaction: { messageId: string; emoji: string; userId: string },
): Promise<boolean> {
  const rows = await scope.tx
    .delete(messageReactions)
    .where(
      and(
        eq(messageReactions.tenantId, scope.tenantId),
        eq(messageReactions.messageId, reaction.messageId),
        eq(messageReactions.emoji, reaction.emoji),
        eq(messageReactions.userId, reaction.userId),
      ),
    )
    .returning({ emoji: messageReactions.emoji });
  return rows.length > 0;
}

/** The reactions of some messages as one viewer sees them: per message id, each emoji in order of first use. */
export type ReactionsByMessage = Map<string, { emoji: string; count: number; me: boolean }[]>;

/** Groups (message, emoji) summaries, already in order of first use, by message. */
export function groupReactions(
  summaries: Iterable<{ messageId: string; emoji: string; count: number; me: boolean }>,
): ReactionsByMessage {
  const grouped: ReactionsByMessage = new Map();
  for (const { messageId, emoji, count, me } of summaries) {
    const list = grouped.get(messageId) ?? [];
    list.push({ emoji, count, me });
    grouped.set(messageId, list);
  }
  return grouped;
}

/** One (message, emoji) of parley_reaction_summaries' answer (src/db/functions). */
export interface ReactionSummaryJson {
  message_id: string;
  emoji: string;
  count: number;
  me: boolean;
}

/** parley_reaction_summaries' answer, as `summarizeReactions` and the one-round-trip read functions get it. */
export const reactionsFromJson = (summaries: ReactionSummaryJson[]): ReactionsByMessage =>
  groupReactions(summaries.map(({ message_id: messageId, ...rest }) => ({ messageId, ...rest })));

/**
 * Per message: each emoji, how many reacted with it and whether `userId` did, in order of first use. The
 * summary is parley_reaction_summaries' (src/db/functions), which the one-round-trip read functions use
 * too: one definition of how reactions are counted and ordered.
 */
export async function summarizeReactions(
  scope: TenantScope,
  messageIds: string[],
  userId: string,
): Promise<ReactionsByMessage> {
  if (messageIds.length === 0) return new Map();
  const result = await scope.tx.execute(sql`
    SELECT parley_reaction_summaries(${scope.tenantId}::uuid, ${userId}::text, ${arrayParam(messageIds, 'uuid')})
      AS summaries`);
  const [row] = rowsOf<{ summaries: ReactionSummaryJson[] }>(result);
  return reactionsFromJson(row?.summaries ?? []);
}

/** Who reacted to a message with what, by (emoji, user id), after a key. */
export function listReactions(
  scope: TenantScope,
  messageId: string,
  page: { after: { emoji: string; userId: string } | undefined; limit: number },
): Promise<ReactionRow[]> {
  return scope.tx
    .select()
    .from(messageReactions)
    .where(
      and(
        eq(messageReactions.tenantId, scope.tenantId),
        eq(messageReactions.messageId, messageId),
        page.after === undefined
          ? undefined
          : sql`(${messageReactions.emoji}, ${messageReactions.userId}) > (${page.after.emoji}, ${page.after.userId})`,
      ),
    )
    .orderBy(asc(messageReactions.emoji), asc(messageReactions.userId))
    .limit(page.limit);
}

/** Every reaction a user made (for export). */
export function listReactionsOf(scope: TenantScope, userId: string): Promise<ReactionRow[]> {
  return scope.tx
    .select()
    .from(messageReactions)
    .where(and(eq(messageReactions.tenantId, scope.tenantId), eq(messageReactions.userId, userId)))
    .orderBy(asc(messageReactions.createdAt));
}
