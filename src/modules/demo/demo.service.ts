import type { Orm } from '../../db/client.ts';
import type { TenantContext } from '../../context.ts';
import { AppError } from '../../errors.ts';
import type { AuthService } from '../auth/auth.service.ts';
import type { ConversationsService } from '../conversations/conversations.service.ts';
import type { MessagesService } from '../messages/messages.service.ts';
import type { TenantsService } from '../tenants/tenants.service.ts';
import type { UsersService } from '../users/users.service.ts';
import { findDemoTenantId, lockDemoSetup, saveDemoTenantId } from './demo.repository.ts';

// The web demo (/demo): a tenant of its own, with four users to sign in as and a little history, and
// sign-in without a password: the server mints a user token for the demo user picked. That is the point of a
// demo, and why it is off unless asked for when the deployment has a PostgreSQL server (docs/DEMO.md).

/** The users one can sign in as. */
export const DEMO_USERS = [
  { id: 'alice', name: 'Alice Martin' },
  { id: 'bob', name: 'Bob Chen' },
  { id: 'carol', name: 'Carol Diaz' },
  { id: 'dave', name: 'Dave Okafor' },
] as const;
export type DemoUserId = (typeof DEMO_USERS)[number]['id'];

/** How long a demo sign-in lasts: the page signs in again after that. */
const DEMO_TOKEN_TTL_SECONDS = 12 * 3600;

export interface DemoServiceDeps {
  orm: Orm;
  tenants: TenantsService;
  users: UsersService;
  conversations: ConversationsService;
  messages: MessagesService;
  auth: AuthService;
}

export function createDemoService(deps: DemoServiceDeps) {
  /** The backend context of the demo tenant, made (and its history seeded) the first time it is needed. */
  let backend: Promise<TenantContext> | null = null;

  const liveKeyOf = async (tenantId: string): Promise<string> => {
    const keys = await deps.tenants.listApiKeys(tenantId);
    const live = keys.find((key) => key.revoked_at === null);
    return live?.id ?? (await deps.tenants.createApiKey(tenantId)).id;
  };

  const existingTenant = async (tenantId: string | null): Promise<TenantContext | null> => {
    if (tenantId === null) return null;
    try {
      await deps.tenants.getTenant(tenantId);
    } catch (error) {
      if (error instanceof AppError && error.code === 'not_found') return null; // deleted by an operator
      throw error;
    }
    return { tenantId, actor: { kind: 'backend', keyId: await liveKeyOf(tenantId) } };
  };

  const setUp = async (): Promise<TenantContext> => {
    const seen = await findDemoTenantId(deps.orm);
    const found = await existingTenant(seen);
    if (found !== null) return found;
    // One process creates it: another waits on the lock, then finds the setting changed and uses that one.
    const created = await deps.orm.transaction(async (tx) => {
      await lockDemoSetup(tx);
      if ((await findDemoTenantId(tx)) !== seen) return null;
      const { tenant, api_key } = await deps.tenants.createTenant({ name: 'web demo' }, tx);
      await saveDemoTenantId(tx, tenant.id);
      return { tenantId: tenant.id, actor: { kind: 'backend' as const, keyId: api_key.id } };
    });
    if (created === null) {
      const other = await existingTenant(await findDemoTenantId(deps.orm));
      if (other === null) throw new Error('the web demo tenant vanished while it was being set up');
      return other;
    }
    await seed(created);
    return created;
  };

  /** The demo's users, a channel for everyone and a group, with a few messages to start from. */
  const seed = async (ctx: TenantContext) => {
    for (const user of DEMO_USERS) await deps.users.upsertUser(ctx, user.id, { name: user.name });
    const as = (userId: DemoUserId): TenantContext => ({
      tenantId: ctx.tenantId,
      actor: { kind: 'user', userId, keyId: ctx.actor.keyId },
    });
    const { conversation: general } = await deps.conversations.createConversation(as('alice'), {
      type: 'channel',
      name: 'general',
      topic: 'Everything and nothing',
      members: ['bob', 'carol', 'dave'],
    });
    const { conversation: design } = await deps.conversations.createConversation(as('alice'), {
      type: 'group',
      name: 'design',
      topic: 'The onboarding redesign',
      members: ['bob', 'carol'],
    });
    const say = (userId: DemoUserId, conversationId: string, text: string) =>
      deps.messages.sendMessage(as(userId), conversationId, { text });
    await say('alice', general.id, 'Welcome to the Parley demo! Sign in as someone else in another window.');
    await say('bob', general.id, 'Everything here is live: messages, typing, reactions, read receipts.');
    await say('carol', design.id, 'I pushed the new onboarding screens, @alice can you take a look?');
    await say('alice', design.id, 'On it. The second step feels long, can we cut a field?');
  };

  return {
    users: DEMO_USERS,

    /** Signs in as a demo user: a user token of the demo tenant. */
    async signIn(userId: DemoUserId): Promise<{ token: string; expires_at: string; user_id: string }> {
      backend ??= setUp().catch((error: unknown) => {
        backend = null; // try again on the next sign-in
        throw error;
      });
      let ctx = await backend;
      try {
        return { ...(await deps.auth.mintUserToken(ctx, userId, DEMO_TOKEN_TTL_SECONDS)), user_id: userId };
      } catch (error) {
        // The tenant or its key was removed since (an operator's cleanup): set it up again, once.
        if (!(error instanceof AppError) || error.code !== 'unauthorized') throw error;
        backend = setUp();
        ctx = await backend;
        return { ...(await deps.auth.mintUserToken(ctx, userId, DEMO_TOKEN_TTL_SECONDS)), user_id: userId };
      }
    },
  };
}

export type DemoService = ReturnType<typeof createDemoService>;
