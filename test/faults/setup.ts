import { expectOk, type Ledger } from './http.ts';
import type { ProbeTenant } from './faults.ts';

/** A measured tenant: its senders, readers and conversations (every user is a member of each). */
export interface WorkloadTenant {
  apiKey: string;
  conversationIds: string[];
  senders: { userId: string; token: string; via: 'http' | 'socket' }[];
  readers: { userId: string; token: string }[];
  /** A member who reads history for the verification, and sends the end markers. */
  owner: { userId: string; token: string };
}

export interface WorkloadShape {
  tenants: number;
  conversationsPerTenant: number;
  httpSendersPerTenant: number;
  socketSendersPerTenant: number;
  readersPerTenant: number;
}

/** A user token, valid longer than any run. */
async function mintToken(ledger: Ledger, base: string, apiKey: string, userId: string): Promise<string> {
  const body = await expectOk(ledger, base, 'POST', `/v1/users/${userId}/tokens`, apiKey, {
    ttl_seconds: 6 * 3600,
  });
  return String(body.token);
}

async function createTenant(ledger: Ledger, base: string, adminToken: string, name: string): Promise<string> {
  const created = await expectOk(ledger, base, 'POST', '/v1/admin/tenants', adminToken, { name });
  return (created.api_key as { secret: string }).secret;
}

/** Creates the measured tenants, their users and conversations, through one server, before any fault. */
export async function createWorkload(
  ledger: Ledger,
  base: string,
  adminToken: string,
  shape: WorkloadShape,
): Promise<WorkloadTenant[]> {
  const tenants: WorkloadTenant[] = [];
  for (let t = 0; t < shape.tenants; t++) {
    const apiKey = await createTenant(ledger, base, adminToken, `faults-${t}`);
    // User ids name their tenant too, so client_msg_ids (`<user id>-<n>`) are unique across the run.
    const ids = (prefix: string, count: number) =>
      Array.from({ length: count }, (_, n) => `t${t}-${prefix}${n}`);
    const httpSenders = ids('http-sender-', shape.httpSendersPerTenant);
    const socketSenders = ids('socket-sender-', shape.socketSendersPerTenant);
    const readerIds = ids('reader-', shape.readersPerTenant);
    const ownerId = `t${t}-owner`;
    const everyone = [ownerId, ...httpSenders, ...socketSenders, ...readerIds];
    for (const userId of everyone) await expectOk(ledger, base, 'PUT', `/v1/users/${userId}`, apiKey, {});
    const conversationIds: string[] = [];
    for (let c = 0; c < shape.conversationsPerTenant; c++) {
      const conversation = await expectOk(
        ledger,
        base,
        'POST',
        '/v1/conversations',
        apiKey,
        { type: 'group', name: `faults ${c}`, members: everyone.filter((id) => id !== ownerId) },
        ownerId,
      );
      conversationIds.push(String(conversation.id));
    }
    const token = (userId: string) => mintToken(ledger, base, apiKey, userId);
    tenants.push({
      apiKey,
      conversationIds,
      senders: [
        ...(await Promise.all(
          httpSenders.map(async (userId) => ({ userId, token: await token(userId), via: 'http' as const })),
        )),
        ...(await Promise.all(
          socketSenders.map(async (userId) => ({
            userId,
            token: await token(userId),
            via: 'socket' as const,
          })),
        )),
      ],
      readers: await Promise.all(readerIds.map(async (userId) => ({ userId, token: await token(userId) }))),
      owner: { userId: ownerId, token: await token(ownerId) },
    });
  }
  return tenants;
}

/** The probe tenant of the recovery probes: one conversation, one sender, one reader. */
export async function createProbeTenant(
  ledger: Ledger,
  base: string,
  adminToken: string,
): Promise<ProbeTenant> {
  const apiKey = await createTenant(ledger, base, adminToken, 'faults-probe');
  for (const userId of ['probe-sender', 'probe-reader']) {
    await expectOk(ledger, base, 'PUT', `/v1/users/${userId}`, apiKey, {});
  }
  const conversation = await expectOk(
    ledger,
    base,
    'POST',
    '/v1/conversations',
    apiKey,
    { type: 'group', name: 'probe', members: ['probe-reader'] },
    'probe-sender',
  );
  return {
    conversationId: String(conversation.id),
    senderToken: await mintToken(ledger, base, apiKey, 'probe-sender'),
    readerToken: await mintToken(ledger, base, apiKey, 'probe-reader'),
  };
}

/** A stored message, as the verification reads it back. */
export interface StoredMessage {
  id: string;
  seq: number;
  senderId: string;
  clientMsgId: string | null;
}

/** A conversation's whole main timeline, oldest first, read page by page (retrying what fails). */
export async function readHistory(
  ledger: Ledger,
  bases: string[],
  conversationId: string,
  token: string,
): Promise<StoredMessage[]> {
  const messages: StoredMessage[] = [];
  let afterSeq = 0;
  for (let attempt = 0; ; attempt++) {
    const base = bases[attempt % bases.length] ?? '';
    let body: Record<string, unknown>;
    try {
      body = await expectOk(
        ledger,
        base,
        'GET',
        `/v1/conversations/${conversationId}/messages?after_seq=${afterSeq}&limit=200`,
        token,
      );
    } catch (error) {
      if (attempt > 20) throw error;
      continue;
    }
    const page = body.data as { id: string; seq: number; sender_id: string; client_msg_id: string | null }[];
    for (const message of page) {
      messages.push({
        id: message.id,
        seq: message.seq,
        senderId: message.sender_id,
        clientMsgId: message.client_msg_id,
      });
    }
    const last = page.at(-1);
    if (body.has_more_after !== true || last === undefined) return messages;
    afterSeq = last.seq;
  }
}
