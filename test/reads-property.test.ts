import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { useTestApp } from './helpers/app.ts';
import { readHelpers } from './helpers/reads.ts';

// Unread counts, property-based: for any history, alice's counts equal a brute-force count over a model of it.

const t = useTestApp();
const { tenantWithUsers, as, send, deleteMessage, markRead, unreadOf, conversationsOf, stateIn } =
  readHelpers(t);

type Sender = 'alice' | 'bob' | 'carol';

type Action =
  | { kind: 'send'; sender: Sender; mention: boolean }
  | { kind: 'reply'; sender: Sender; root: number; mention: boolean }
  | { kind: 'delete'; target: number }
  | { kind: 'edit'; target: number; mention: boolean }
  | { kind: 'erase' }
  | { kind: 'read'; at: number | 'latest' | 'beyond' };

interface ModelMessage {
  id: string;
  seq: number;
  sender: Sender;
  isReply: boolean;
  deleted: boolean;
  mentionsAlice: boolean;
}

// Alice sends less often than the others, so histories leave her something unread.
const senderArb = fc.constantFrom<Sender>('bob', 'carol', 'bob', 'carol', 'alice');
const actionArb: fc.Arbitrary<Action> = fc.oneof(
  {
    weight: 5,
    arbitrary: fc.record({ kind: fc.constant('send' as const), sender: senderArb, mention: fc.boolean() }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('reply' as const),
      sender: senderArb,
      root: fc.nat({ max: 100 }),
      mention: fc.boolean(),
    }),
  },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('delete' as const), target: fc.nat({ max: 100 }) }) },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('edit' as const),
      target: fc.nat({ max: 100 }),
      mention: fc.boolean(),
    }),
  },
  // Erasing carol makes her messages tombstones and removes her; she sends nothing after.
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('erase' as const) }) },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('read' as const),
      at: fc.oneof(fc.nat({ max: 100 }), fc.constant('latest' as const), fc.constant('beyond' as const)),
    }),
  },
);

// Groups (and direct conversations) read counters that triggers keep; channels count by scanning. Both must
// agree with the model.
describe.each(['group', 'channel'] as const)('unread counts in a %s, property-based', (type) => {
  it('equal a brute-force count over any history of sends, replies, edits, deletes, erasures and reads', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(actionArb, { minLength: 1, maxLength: 25, size: 'max' }), async (actions) => {
        const tenant = await tenantWithUsers('alice', 'bob', 'carol', 'dave');
        const created = await as(tenant, 'alice').post('/v1/conversations', {
          type,
          name: 'property',
          members: ['bob', 'carol'],
        });
        expect(created.statusCode, created.body).toBe(201);
        const group = created.json<{ id: string }>().id;
        let carolErased = false;
        const model: ModelMessage[] = [];
        let watermark = 0;
        const lastSeq = () => model.at(-1)?.seq ?? 0;

        const expectedCounts = () => {
          const unread = model.filter(
            (message) =>
              !message.isReply && !message.deleted && message.sender !== 'alice' && message.seq > watermark,
          );
          return {
            unread_count: unread.length,
            mention_count: unread.filter((message) => message.mentionsAlice).length,
          };
        };

        for (const action of actions) {
          switch (action.kind) {
            case 'send':
            case 'reply': {
              if (action.sender === 'carol' && carolErased) break;
              let root: ModelMessage | undefined;
              if (action.kind === 'reply') {
                const roots = model.filter((message) => !message.isReply && !message.deleted);
                root = roots[action.root % Math.max(roots.length, 1)];
                if (root === undefined) break;
              }
              const text = `${action.kind} ${model.length + 1}${action.mention ? ' cc @alice' : ''}`;
              const sent = await send(tenant, action.sender, group, text, root?.id);
              expect(sent.seq).toBe(lastSeq() + 1);
              expect(sent.mentions).toEqual(action.mention ? ['alice'] : []);
              model.push({
                id: sent.id,
                seq: sent.seq,
                sender: action.sender,
                isReply: root !== undefined,
                deleted: false,
                mentionsAlice: action.mention,
              });
              if (action.sender === 'alice') watermark = Math.max(watermark, sent.seq);
              break;
            }
            case 'delete': {
              const live = model.filter((message) => !message.deleted);
              const target = live[action.target % Math.max(live.length, 1)];
              if (target === undefined) break;
              await deleteMessage(tenant, target.sender, target.id);
              target.deleted = true;
              break;
            }
            case 'edit': {
              const live = model.filter((message) => !message.deleted);
              const target = live[action.target % Math.max(live.length, 1)];
              if (target === undefined) break;
              const edited = await as(tenant, target.sender).patch(`/v1/messages/${target.id}`, {
                text: `edited${action.mention ? ' cc @alice' : ''}`,
              });
              expect(edited.statusCode, edited.body).toBe(200);
              target.mentionsAlice = action.mention;
              break;
            }
            case 'erase': {
              if (carolErased) break;
              const erased = await t.app.inject({
                method: 'DELETE',
                url: '/v1/users/carol',
                headers: { authorization: `Bearer ${tenant.apiKey.secret}` },
              });
              expect(erased.statusCode, erased.body).toBe(204);
              carolErased = true;
              for (const message of model) if (message.sender === 'carol') message.deleted = true;
              break;
            }
            case 'read': {
              let target: number;
              let payload: object | undefined;
              if (action.at === 'latest') {
                target = lastSeq();
              } else if (action.at === 'beyond') {
                target = lastSeq();
                payload = { seq: lastSeq() + 5 };
              } else {
                target = action.at % (lastSeq() + 1);
                payload = { seq: target };
              }
              watermark = Math.max(watermark, target);
              const state = await markRead(tenant, 'alice', group, payload);
              expect(state).toEqual({
                conversation_id: group,
                last_read_seq: watermark,
                ...expectedCounts(),
              });
              break;
            }
          }
          // After every step, not only at the end: GET /v1/unread agrees with the model.
          const now = expectedCounts();
          const listed = (await unreadOf(tenant, 'alice')).conversations;
          const hasUnread = now.unread_count > 0 || now.mention_count > 0;
          expect(listed, JSON.stringify(action)).toEqual(
            hasUnread ? [{ conversation_id: group, last_read_seq: watermark, ...now }] : [],
          );
        }

        const counts = expectedCounts();
        const hasUnread = counts.unread_count > 0 || counts.mention_count > 0;
        expect(await unreadOf(tenant, 'alice')).toEqual({
          total_unread: counts.unread_count,
          total_mentions: counts.mention_count,
          conversations: hasUnread ? [{ conversation_id: group, last_read_seq: watermark, ...counts }] : [],
        });
        const [listed, ...others] = await conversationsOf(tenant, 'alice');
        expect(others).toEqual([]);
        expect(listed).toMatchObject({ id: group, ...counts });
        const latestMain = model.filter((message) => !message.isReply).at(-1);
        expect(listed?.last_message?.seq ?? null).toBe(latestMain?.seq ?? null);
        expect(listed?.last_message?.id ?? null).toBe(latestMain?.id ?? null);

        // A member who arrives now has every live main-timeline message unread, none mentioning him.
        const joined =
          type === 'channel'
            ? await as(tenant, 'dave').post(`/v1/conversations/${group}/join`)
            : await as(tenant, 'alice').post(`/v1/conversations/${group}/members`, { user_ids: ['dave'] });
        expect(joined.statusCode, joined.body).toBeLessThan(300);
        const liveMain = model.filter((message) => !message.isReply && !message.deleted).length;
        expect(await stateIn(tenant, 'dave', group)).toEqual({ unread_count: liveMain, mention_count: 0 });
      }),
      { numRuns: 20, interruptAfterTimeLimit: 60_000, markInterruptAsFailure: false },
    );
  }, 90_000);
});
