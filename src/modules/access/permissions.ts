import { AppError } from '../../errors.ts';

// The rules of who may do what in a conversation, as pure functions of roles and rows: the contract's role
// table (one permission function), the edge rules of changing members, and the state rules (archived,
// deleted). Repositories import its types; services ask it. It imports nothing but the errors it throws.

/** A member's role in one conversation, highest first. */
export const ROLES = ['OWNER', 'ADMIN', 'MEMBER', 'VIEWER'] as const;
export type Role = (typeof ROLES)[number];

export type ConversationType = 'direct' | 'group' | 'channel';

/** Everything a member may try to do in a conversation (the contract's role table, row by row). */
export type ConversationAction =
  | 'read'
  | 'send'
  | 'react'
  | 'edit_own_message'
  | 'delete_own_message'
  | 'delete_any_message'
  | 'pin'
  | 'manage_members'
  | 'update'
  | 'archive'
  | 'delete'
  | 'make_owner';

/** The least role each action needs. */
const LEAST_ROLE: Record<ConversationAction, Role> = {
  read: 'VIEWER',
  send: 'MEMBER',
  react: 'MEMBER',
  edit_own_message: 'MEMBER',
  delete_own_message: 'MEMBER',
  delete_any_message: 'ADMIN',
  pin: 'ADMIN',
  manage_members: 'ADMIN',
  update: 'ADMIN',
  archive: 'ADMIN',
  delete: 'OWNER',
  make_owner: 'OWNER',
};

const RANK: Record<Role, number> = { OWNER: 3, ADMIN: 2, MEMBER: 1, VIEWER: 0 };

/** True when `role` ranks strictly above `other`. */
export const outranks = (role: Role, other: Role) => RANK[role] > RANK[other];

/** The one answer to "may a member with this role do this here?". Non-members (null) may do nothing. */
export function isAllowed(role: Role | null, action: ConversationAction): boolean {
  return role !== null && RANK[role] >= RANK[LEAST_ROLE[action]];
}

/**
 * The roles that may do `action`, highest first: how the database functions that check a role themselves
 * (a send, a history page, search) are given the rule, as a parameter, rather than a copy of it.
 */
export function rolesAllowedTo(action: ConversationAction): Role[] {
  return ROLES.filter((role) => isAllowed(role, action));
}

/**
 * The one answer to "may this user see this conversation at all?" (else it is a 404): its members may, and
 * for a channel every user of the tenant. Only live conversations are asked about; a deleted one is seen by
 * nobody. The database functions that find a conversation return its type and the user's role, and the
 * answer is made here.
 */
export function isVisible(type: ConversationType, role: Role | null): boolean {
  return role !== null || type === 'channel';
}

/** The 403 of an action the caller's role does not allow. */
export const notAllowedError = (action: ConversationAction) =>
  new AppError('forbidden', `your role in this conversation does not allow this (${action})`);

/** Throws 403 unless `role` allows `action`. Callers have already answered 404 for invisible conversations. */
export function assertAllowed(role: Role | null, action: ConversationAction): void {
  if (!isAllowed(role, action)) throw notAllowedError(action);
}

/**
 * The edge rules of changing someone's membership (adding with a role, changing a role, removing):
 * only ADMIN and above manage members; an ADMIN touches only members below ADMIN and grants only roles
 * below ADMIN; only an OWNER makes another OWNER. `target` is the member's current role, if any; `next`
 * the role it would get, or null for a removal.
 */
export function assertMayChangeMember(actor: Role | null, target: Role | null, next: Role | null): void {
  assertAllowed(actor, 'manage_members');
  if (next === 'OWNER') assertAllowed(actor, 'make_owner');
  if (actor === 'OWNER') return;
  if (target !== null && !outranks(actor ?? 'VIEWER', target)) {
    throw new AppError('forbidden', 'an ADMIN may only change members below ADMIN');
  }
  if (next !== null && !outranks(actor ?? 'VIEWER', next)) {
    throw new AppError('forbidden', 'an ADMIN may only grant roles below ADMIN');
  }
}

/** Direct conversations have exactly their two members, for good. */
export function assertMembershipMutable(type: ConversationType): void {
  if (type === 'direct') {
    throw new AppError('forbidden', 'a direct conversation has fixed members');
  }
}

/** The 409 of a change to an archived conversation. */
export const archivedError = () =>
  new AppError('conflict', 'the conversation is archived; unarchive it first');

/** Archived conversations are read-only until unarchived. */
export function assertNotArchived(conversation: { archivedAt: Date | null }): void {
  if (conversation.archivedAt !== null) throw archivedError();
}

/** The 409 of acting on a tombstone. */
export const deletedMessageError = () => new AppError('conflict', 'the message has been deleted');

/** A deleted message is a tombstone: nothing can be done to it but read it. */
export function assertNotDeleted(message: { deletedAt: Date | null }): void {
  if (message.deletedAt !== null) throw deletedMessageError();
}
