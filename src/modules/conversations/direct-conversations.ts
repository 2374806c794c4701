import type { TenantScope } from '../../db/tenant-scope.ts';
import { AppError } from '../../errors.ts';
import { newId } from '../../ids.ts';
import type { EventLog } from '../events/event-log.ts';
import {
  findLiveUserIds,
  findMembers,
  insertMembers,
  type ConversationRow,
  type MemberRow,
} from './conversations.repository.ts';
import { findDirectConversation, insertDirectConversation } from './direct-conversations.repository.ts';
import { conversationEventData } from './conversations.presenter.ts';
import type { CreateConversationInput } from './conversations.schemas.ts';

// Direct conversations: one per pair of users, found by the pair's key, opened by either side (creating a
// conversation of type direct, or sending to a user with POST /v1/direct-messages).

/** The direct_key of a pair: both ids sorted, joined by a space, which no user id contains. */
const directKeyOf = (a: string, b: string) => [a, b].sort().join(' ');

/** The other user of a direct conversation's creation request; 400 unless it names exactly one. */
export function assertDirectInput(userId: string, input: CreateConversationInput): string {
  const others = (input.members ?? []).filter((id) => id !== userId);
  if (others.length !== 1 || (input.members?.length ?? 0) > 2) {
    throw new AppError('validation_failed', 'a direct conversation is with exactly one other user', [
      { path: '/body/members', message: 'must name exactly one other user' },
    ]);
  }
  for (const field of ['name', 'topic'] as const) {
    if (input[field] !== undefined) {
      throw new AppError('validation_failed', `a direct conversation has no ${field}`, [
        { path: `/body/${field}`, message: 'is not allowed for a direct conversation' },
      ]);
    }
  }
  return others[0] ?? '';
}

/**
 * The direct conversation of two users, created if it does not exist (both MEMBERs). Two racing creations,
 * from either side, converge on one row through the partial unique index on direct_key. `path` names the
 * request field holding the other user, for the error when that user does not exist.
 */
export async function openDirectConversation(
  scope: TenantScope,
  events: EventLog,
  userId: string,
  otherUserId: string,
  path: string,
): Promise<{ conversation: ConversationRow; member: MemberRow | null; created: boolean }> {
  if (otherUserId === userId) {
    throw new AppError('validation_failed', 'a direct conversation is with another user', [
      { path, message: 'must be another user than the caller' },
    ]);
  }
  if (!(await findLiveUserIds(scope, [otherUserId])).has(otherUserId)) {
    throw new AppError('validation_failed', 'some users do not exist', [
      { path, message: `user ${otherUserId} does not exist` },
    ]);
  }
  const directKey = directKeyOf(userId, otherUserId);
  const created = await insertDirectConversation(scope, { id: newId(), directKey, createdBy: userId });
  if (created) {
    const members = await insertMembers(scope, created.id, [
      { userId, role: 'MEMBER' },
      { userId: otherUserId, role: 'MEMBER' },
    ]);
    await events.record(scope, created.id, [
      {
        type: 'conversation.created',
        data: { ...conversationEventData(created), member_ids: [userId, otherUserId] },
      },
    ]);
    return {
      conversation: created,
      member: members.find((member) => member.userId === userId) ?? null,
      created: true,
    };
  }
  // Another request created it first (perhaps this very moment, from the other side): use that one.
  const existing = await findDirectConversation(scope, directKey);
  if (!existing) throw new Error('direct conversation neither inserted nor found');
  const [member] = await findMembers(scope, existing.id, [userId]);
  return { conversation: existing, member: member ?? null, created: false };
}
